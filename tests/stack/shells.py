"""A shell as a new user opens it: no AWS settings at all (no variables, no ~/.aws, no instance metadata)."""

from __future__ import annotations

import os
from pathlib import Path

NO_AWS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_ROUTE_53", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
          "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "DNSCTL_STATE_DIR", "DNSCTL_API_TOKEN")


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NO_AWS and not k.startswith("DNSCTL_")}
    env.update(HOME=str(home), AWS_EC2_METADATA_DISABLED="true", COLUMNS="200", **extra)
    return env
