"""How the CLI talks to a running dnsctl service over HTTP: where it is, the token, and clear errors.

Every CLI module that calls a service (planner, enactors, prober, ...) uses this helper:

    client = service_client("planner", url)          # url: the --url flag, or None
    with cli_errors():                                # prints ServiceError nicely, exits 1
        fleet = client.get("/v1/fleet")

Base URL, first match wins: the flag; DNSCTL_<SERVICE>_URL (e.g. DNSCTL_PLANNER_URL,
DNSCTL_ENACTOR_A_URL); the stack `dnsctl up` describes in the state dir (services/stack_file.py);
http://127.0.0.1:<the service's default port from services/stack.py>.
The bearer token comes from services.auth.load_token() and is sent on every request. All clients
of a process share one connection pool (keep-alive), so polling a service every second reuses
one connection instead of leaving one in TIME-WAIT per request.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from services import stack_file
from services.auth import load_token
from services.stack import Ports, services

_HINTS = {
    "emulator": "start the stack with `dnsctl up` or the emulator with `dnsctl emulator`",
    "planner": "start the stack with `dnsctl up` or the planner with `dnsctl planner`",
    "dns": "start the stack with `dnsctl up` or the DNS server with `dnsctl dns`",
    "prober": "start the stack with `dnsctl up` or the prober with `dnsctl prober`",
}
err_console = Console(stderr=True)


class ServiceError(Exception):
    """A service call failed; the message is what the user should read."""

    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


class ServiceUnreachable(ServiceError):
    """Nothing answers at the service's URL."""


def env_var(service: str) -> str:
    return f"DNSCTL_{service.upper().replace('-', '_')}_URL"


def default_url(service: str) -> str:
    """http://127.0.0.1:<port> from the local stack's table (services/stack.py)."""
    for spec in services(Ports()):
        if spec.name == service:
            return f"http://127.0.0.1:{spec.port}"
    raise ValueError(f"unknown service {service!r}")


def stack_url(service: str) -> str | None:
    """The service's URL in the stack the state dir describes, if any."""
    stack = stack_file.read()
    return stack.url(service) if stack else None


def base_url(service: str, flag: str | None = None) -> str:
    url = flag or os.environ.get(env_var(service)) or stack_url(service) or default_url(service)
    return url.rstrip("/")


_pool_lock = threading.Lock()
_pool: Any = None


def _http():
    """The process's one httpx.Client (imported on first use: most commands never call a service)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            import httpx

            _pool = httpx.Client(limits=httpx.Limits(max_keepalive_connections=16, keepalive_expiry=30.0))
        return _pool


def start_hint(service: str) -> str:
    if service.startswith("enactor"):
        return f"start the stack with `dnsctl up` or this enactor with `dnsctl enactor --id {service}`"
    return _HINTS.get(service, "start the stack with `dnsctl up`")


def _message(body: Any, fallback: str) -> str:
    """The human part of an error body: FastAPI's {"detail": str | [field errors]}."""
    if not isinstance(body, dict) or "detail" not in body:
        return fallback
    detail = body["detail"]
    if isinstance(detail, list):
        parts = []
        for e in detail:
            if isinstance(e, dict):
                loc = ".".join(str(p) for p in e.get("loc", []) if p != "body")
                parts.append(f"{loc}: {e.get('msg', '')}" if loc else str(e.get("msg", "")))
            else:
                parts.append(str(e))
        return "invalid request: " + "; ".join(parts)
    return str(detail)


class ServiceClient:
    """A small JSON-over-HTTP client for one service."""

    def __init__(self, service: str, url: str, token: str | None = None, timeout_s: float = 30.0):
        self.service = service
        self.url = url.rstrip("/")
        self._token = token
        self._timeout_s = timeout_s

    def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = _http().request(
                method, self.url + path, json=json, params=params, headers=headers, timeout=self._timeout_s
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ServiceUnreachable(
                f"{self.service} is not reachable at {self.url} — {start_hint(self.service)}"
            ) from exc
        except httpx.HTTPError as exc:
            raise ServiceError(f"{self.service} at {self.url} failed: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            message = _message(body, f"{response.status_code} {response.reason_phrase}")
            if response.status_code == 401:
                message += " (the CLI sends DNSCTL_API_TOKEN or the token file under DNSCTL_STATE_DIR, default .dnsctl/token)"
            raise ServiceError(f"{self.service}: {message}", response.status_code, body)
        return body

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None, **params: Any) -> Any:
        return self.request("POST", path, json=json, params=params)

    def patch(self, path: str, json: Any = None, **params: Any) -> Any:
        return self.request("PATCH", path, json=json, params=params)

    def delete(self, path: str, **params: Any) -> Any:
        return self.request("DELETE", path, params=params)


def service_client(service: str, url: str | None = None, timeout_s: float = 30.0) -> ServiceClient:
    return ServiceClient(service, base_url(service, url), load_token(), timeout_s)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Print a ServiceError (or a plan store error, for commands that work on S3 directly) as one
    red line on stderr and exit with status 1 (no traceback)."""
    from services.plan.store import StoreError

    try:
        yield
    except (ServiceError, StoreError) as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
