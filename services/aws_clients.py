"""boto3 clients for S3 and Route 53, configured the way every process needs them.

Endpoints come only from boto3's standard configuration (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3,
AWS_ENDPOINT_URL_ROUTE_53, profiles): with none set, the clients talk to real AWS. Retries are
botocore's own (adaptive mode unless AWS_RETRY_MODE / AWS_MAX_ATTEMPTS or the profile say
otherwise; see services/aws_retries.py), never a hand-written loop. Every Route 53 client also
shares the process's per-account rate limit (services/rate_limit.py), and every throttle any
client meets is counted and logged.

Clients come from botocore's session (what boto3 wraps; the same configuration chain): boto3
itself adds nothing these clients use, and importing it pulls in s3transfer and multiprocessing,
a quarter of what `dnsctl status` would import.
"""

from __future__ import annotations

import os
from functools import cache

import botocore.session
from botocore.config import Config
from botocore.exceptions import IncompleteReadError

from services import rate_limit, stack_file
from services.aws_retries import observe_throttles, retry_settings
from services.stack_file import AwsNotConfigured

DEFAULT_REGION = "us-east-1"
# Hosts of AWS's own endpoints: a client whose endpoint is one of these talks to a real account.
_AWS_HOST_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")


def _config(max_attempts: int, timeout_s: float) -> Config:
    retries = retry_settings(max_attempts, _botocore_session().get_scoped_config())
    return Config(
        retries=retries.botocore_retries(),
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        # S3 path-style addressing works on AWS and on any endpoint override alike.
        s3={"addressing_style": "path"},
    )


@cache
def _botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def _region() -> str:
    """Where the AWS settings are decided, once: a stack's, explicit ones, or a clear AwsNotConfigured."""
    stack_file.resolve_aws()
    if _botocore_session().get_credentials() is None:
        raise AwsNotConfigured(stack_file.missing_message())
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def _client(service: str, max_attempts: int, timeout_s: float):
    region = _region()
    return _botocore_session().create_client(service, region_name=region, config=_config(max_attempts, timeout_s))


def refuse_short_replies(client) -> None:
    """A reply cut short must fail the call, never parse as an empty success.

    botocore reads non-streaming bodies with urllib3's enforce_content_length off, so a 200 whose
    server died after the headers (Content-Length 924, no body) parses as "no hosted zones" or "no
    records". `dnsctl soak` found it: a kill -9 of the emulator mid-reply made the DNS data plane
    drop every zone and answer REFUSED for 28 s. Raised here, the caller's error path (keep the
    last good state, back off) takes over."""

    def check(operation_model, response_dict, **_):
        body, expected = response_dict.get("body"), response_dict.get("headers", {}).get("content-length")
        if isinstance(body, bytes) and expected is not None and operation_model.http.get("method") != "HEAD":
            if expected.isdigit() and len(body) != int(expected):
                raise IncompleteReadError(actual_bytes=len(body), expected_bytes=int(expected))

    client.meta.events.register("before-parse", check)


def s3_client(max_attempts: int = 3, timeout_s: float = 5.0):
    client = _client("s3", max_attempts, timeout_s)
    observe_throttles(client)
    refuse_short_replies(client)
    return client


def route53_client(max_attempts: int = 5, timeout_s: float = 10.0):
    client = _client("route53", max_attempts, timeout_s)
    rate_limit.install(client, _botocore_session().get_credentials())
    observe_throttles(client)
    refuse_short_replies(client)
    return client


def is_real_aws(client) -> bool:
    """The client talks to AWS itself (no endpoint override such as the emulator's)."""
    from urllib.parse import urlsplit

    host = (urlsplit(client.meta.endpoint_url).hostname or "").lower()
    return host.endswith(_AWS_HOST_SUFFIXES)


class RealAccountRefused(RuntimeError):
    """A command would create resources in a real AWS account and was not given --aws."""


def refuse_real_aws(client, what: str, allowed: bool) -> None:
    """Raise RealAccountRefused when `client` reaches real AWS and the user did not pass --aws."""
    if allowed or not is_real_aws(client):
        return
    raise RealAccountRefused(
        f"this would {what} in a real AWS account ({client.meta.endpoint_url}); nothing was created. "
        "Pass --aws to do it on purpose, or point at the local stack (`dnsctl up`, --state-dir, `dnsctl env`)."
    )


def secretsmanager_client(max_attempts: int = 3, timeout_s: float = 5.0):
    """For the planner's plan signing key on AWS (services/plan/signing.py), read once at start."""
    return _client("secretsmanager", max_attempts, timeout_s)
