"""Where is my stack: the description `dnsctl up` writes into its state directory, and how every
command finds it.

`dnsctl up` (services/supervisor.py) writes <state dir>/stack.json while the stack runs: the run
id, the mode, every service's address, port, pid and log, the emulator's endpoint and the
placeholder credentials to use with it. Every other command, run from any shell, finds the
stack from there:

    state dir      --state-dir, else DNSCTL_STATE_DIR, else ./.dnsctl
    AWS settings   explicit ones in the environment win (AWS_ENDPOINT_URL*, AWS_PROFILE,
                   AWS_ACCESS_KEY_ID); otherwise the stack's emulator and its credentials are put
                   into this process's environment, which is boto3's standard configuration
    service URLs   a flag, else DNSCTL_<SERVICE>_URL, else the stack's, else the default port

With no stack and no AWS credentials, `require_aws` says exactly what is missing (AwsNotConfigured)
instead of boto3's NoCredentialsError. `dnsctl env` prints the same settings as shell exports.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATE_DIR_ENV = "DNSCTL_STATE_DIR"
DEFAULT_STATE_DIR = ".dnsctl"
FILE_NAME = "stack.json"
RUN_ID_ENV = "DNSCTL_RUN_ID"
# Environment variables that mean "the user chose where AWS is": they win over the stack.
EXPLICIT_AWS_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_ROUTE_53", "AWS_PROFILE", "AWS_ACCESS_KEY_ID")


class AwsNotConfigured(RuntimeError):
    """Neither a stack description nor AWS settings: the message names what is missing."""


def state_dir(flag: Path | str | None = None) -> Path:
    """--state-dir, else DNSCTL_STATE_DIR, else ./.dnsctl (absolute)."""
    return Path(flag or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR).resolve()


def use_state_dir(flag: Path | str | None) -> Path:
    """Make `flag` (or the default) this process's state dir, for everything that reads DNSCTL_STATE_DIR."""
    where = state_dir(flag)
    os.environ[STATE_DIR_ENV] = str(where)
    return where


def new_run_id() -> str:
    """Sortable by start time, unique per `dnsctl up`: 20261201T135000Z-3fa2."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Stack:
    """A stack's description, as read from its stack.json."""

    path: Path
    data: dict[str, Any]

    @property
    def state_dir(self) -> Path:
        return self.path.parent

    @property
    def run_id(self) -> str | None:
        return self.data.get("run_id")

    @property
    def host(self) -> str:
        return self.data.get("host", "127.0.0.1")

    @property
    def mode(self) -> str | None:
        return self.data.get("mode")

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return self.data.get("services", {})

    @property
    def log_dir(self) -> Path | None:
        return Path(self.data["log_dir"]) if self.data.get("log_dir") else None

    @property
    def running(self) -> bool:
        """The `dnsctl up` (or race) process that wrote it still runs."""
        return _alive(self.data.get("supervisor_pid"))

    @property
    def aws_env(self) -> dict[str, str]:
        """The AWS settings of its emulator (endpoint, placeholder credentials, region); empty when
        the stack runs against AWS itself (`dnsctl up --no-emulator`)."""
        return dict(self.data.get("aws_env", {}))

    @property
    def emulator_url(self) -> str | None:
        return self.aws_env.get("AWS_ENDPOINT_URL")

    def url(self, service: str) -> str | None:
        svc = self.services.get(service)
        if not svc or svc.get("protocol", "tcp") != "tcp" or not svc.get("port"):
            return None
        return svc.get("url") or f"http://{self.host}:{svc['port']}"

    @property
    def dns(self) -> tuple[str, int] | None:
        svc = self.services.get("dns")
        return (self.host, int(svc["port"])) if svc else None


def read(where: Path | str | None = None) -> Stack | None:
    """The stack described in the state dir, or None (no file, or not JSON)."""
    path = state_dir(where) / FILE_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return Stack(path, data) if isinstance(data, dict) else None


def write(where: Path, data: dict[str, Any]) -> Path:
    """Write the description atomically (a reader never sees half of it)."""
    path = Path(where) / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)
    return path


def remove(where: Path) -> None:
    (Path(where) / FILE_NAME).unlink(missing_ok=True)


def explicit_aws() -> list[str]:
    """The AWS settings this shell gives explicitly (names only, never values)."""
    return [name for name in EXPLICIT_AWS_ENV if os.environ.get(name)]


@dataclass(frozen=True)
class AwsSource:
    """Where this process's AWS settings come from, in words for status lines and errors."""

    kind: str  # "stack", "explicit" or "default"
    detail: str
    stack: Stack | None = None


_resolved: dict[Path, AwsSource] = {}


def resolve_aws(where: Path | str | None = None) -> AwsSource:
    """Decide where AWS is for this process, and put a stack's settings into the environment
    when they apply (explicit settings win; a stack on real AWS adds nothing). Decided once per
    state dir and process: after the stack's settings are applied they would look explicit."""
    key = state_dir(where)
    if key not in _resolved:
        _resolved[key] = _resolve_aws(key)
    return _resolved[key]


def _resolve_aws(where: Path) -> AwsSource:
    stack = read(where)
    explicit = explicit_aws()
    if explicit:
        # An explicit endpoint that is the stack's own emulator still needs its placeholder credentials.
        if stack and stack.emulator_url and os.environ.get("AWS_ENDPOINT_URL") == stack.emulator_url and not _has_key_env():
            _apply(stack.aws_env)
        return AwsSource("explicit", "from the environment (" + ", ".join(explicit) + ")", stack)
    if stack and stack.aws_env:
        _apply(stack.aws_env)
        return AwsSource("stack", f"the stack in {stack.state_dir} (emulator {stack.emulator_url})", stack)
    return AwsSource("default", "boto3's default configuration (shared files, instance role)", stack)


def _has_key_env() -> bool:
    return bool(os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"))


def _apply(env: dict[str, str]) -> None:
    os.environ.pop("AWS_PROFILE", None)  # a profile's keys must never reach the emulator
    os.environ.update(env)


def missing_message(where: Path | str | None = None) -> str:
    path = state_dir(where) / FILE_NAME
    return (
        f"no AWS settings: no stack description at {path} (start a stack with `dnsctl up`, or point at one with "
        "--state-dir or DNSCTL_STATE_DIR) and no AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, or an instance role); for the emulator also AWS_ENDPOINT_URL. "
        "`dnsctl env` prints a running stack's settings as shell exports."
    )


def env_exports(stack: Stack) -> dict[str, str]:
    """The variables another tool (boto3, the aws CLI, a second shell) needs to talk to this stack."""
    out = {STATE_DIR_ENV: str(stack.state_dir), **stack.aws_env}
    if "AWS_DEFAULT_REGION" in out:
        out.setdefault("AWS_REGION", out["AWS_DEFAULT_REGION"])
    for key in ("DNSCTL_BUCKET", "DNSCTL_REGION"):
        if stack.data.get("settings", {}).get(key):
            out[key] = stack.data["settings"][key]
    for name in stack.services:
        url = stack.url(name)
        if url and name != "emulator":
            out[f"DNSCTL_{name.upper().replace('-', '_')}_URL"] = url
    if stack.dns:
        out["DNSCTL_DNS"] = f"{stack.dns[0]}:{stack.dns[1]}"
    return out
