"""The one way every HTTP service of dnsctl is built and served (planner, enactors, prober, console).

What each service gets from here, so no service can forget one:

- `service_app(...)`: a FastAPI app whose Swagger UI (/docs) and ReDoc (/redoc) load from the
  assets packaged in fastapi-offline (no CDN: the docs work on a machine with no internet), and
  whose `/` redirects to /docs.
- A request body limit (1 MB by default, 413) enforced by an ASGI middleware that counts bytes
  as they arrive, chunked bodies without Content-Length included, before any parsing and before
  the token check; a body that takes longer than `body_timeout_s` to arrive gets 408.
- NaN and Infinity in a JSON body are refused with 422: they are not JSON (RFC 8259), and
  Python's json module would otherwise let them through into models and responses.
- `/healthz` (alive: the process serves) and `/readyz` (the AWS services it needs answer) split,
  from `add_health_routes`.
- `serve(app, host, port)`: uvicorn with an idle (keep-alive) timeout and a header-read timeout.
  uvicorn has none for a request whose headers never finish (slow loris), nor for a connection
  that never sends anything, so `HeaderDeadlineProtocol` closes a connection that has not
  completed a request's headers within `header_timeout_s`; h11's incomplete-event limit caps
  how large unfinished headers may grow.

Limits come from one settings object (env DNSCTL_HTTP_*).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic_settings import BaseSettings, SettingsConfigDict
from uvicorn.protocols.http.h11_impl import H11Protocol

from services.logs import get_logger


class ServerLimits(BaseSettings):
    """Limits of every HTTP server (env DNSCTL_HTTP_MAX_BODY_BYTES, ..._HEADER_TIMEOUT_S, ...)."""

    model_config = SettingsConfigDict(env_prefix="DNSCTL_HTTP_")

    max_body_bytes: int = 1_000_000
    body_timeout_s: float = 30.0
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    max_header_bytes: int = 16 * 1024


# --- request bodies -------------------------------------------------------------------------


class _NotJson(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJson(name)


def _json_constant(body: bytes) -> str | None:
    """'NaN', 'Infinity' or '-Infinity' when the JSON body holds one; None otherwise (or not JSON)."""
    try:
        json.loads(body, parse_constant=_refuse_constant)
    except _NotJson as exc:
        return str(exc)
    except ValueError:
        return None  # not JSON at all: FastAPI's own validation says so
    return None


async def _send_json(send: Callable, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware: the body limit, the body-read deadline and the NaN/Infinity check.

    The whole body is read (at most `max_bytes` of it) before the app sees the request, so a
    route, its token check and its JSON parser only ever get a body that fits.
    """

    def __init__(self, app: Any, max_bytes: int = 1_000_000, body_timeout_s: float = 30.0):
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s
        self._log = get_logger(component="http")

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await _send_json(send, 400, {"detail": "Content-Length is not a number", "error": "bad_request"})
                return
            if too_big:
                await self._too_large(scope, send, f"Content-Length {int(declared)}")
                return
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.body_timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                self._log.warning("http_body_timeout", path=scope.get("path", ""), received_bytes=size)
                await _send_json(send, 408, {"detail": "the request body did not arrive in time", "error": "body_timeout"})
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, send, f"more than {self.max_bytes} bytes received")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if body and (content_type == b"application/json" or content_type.endswith(b"+json")):
            constant = _json_constant(body)
            if constant is not None:
                await _send_json(send, 422, {
                    "detail": [{"loc": ["body"], "msg": f"{constant} is not valid JSON (RFC 8259 has no NaN or Infinity)",
                                "type": "json_invalid"}],
                    "error": "invalid_json",
                })
                return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: dict, send: Callable, what: str) -> None:
        self._log.warning("http_body_too_large", path=scope.get("path", ""), method=scope.get("method", ""),
                          limit_bytes=self.max_bytes, seen=what)
        await _send_json(send, 413, {
            "detail": f"request body too large ({what}; the limit is {self.max_bytes} bytes)",
            "error": "body_too_large",
        })


# --- the app ----------------------------------------------------------------------------------


OFFLINE_ASSETS = "/static-offline-docs"  # where fastapi-offline mounts its packaged Swagger UI and ReDoc
REDOC_JS = "/docs-assets/redoc.standalone.js"
# ReDoc's bundle shows a Redocly logo from a CDN (hidden when it fails to load); served from here instead.
_REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@functools.cache
def _redoc_js() -> bytes:
    import fastapi_offline

    bundle = Path(fastapi_offline.__file__).parent / "static" / "redoc.standalone.js"
    return bundle.read_bytes().replace(_REDOC_CDN_LOGO.encode(), f"{OFFLINE_ASSETS}/favicon.png".encode())


def running_lifespan(start: Callable[[], None], stop: Callable[[], None]) -> Callable[[FastAPI], Any]:
    """A lifespan that runs a service's background worker (an enactor's runner) while the app serves."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        start()
        try:
            yield
        finally:
            stop()

    return lifespan


def service_app(title: str, *, limits: ServerLimits | None = None, home: str | None = "/docs", **kwargs: Any) -> FastAPI:
    """A FastAPI app with offline docs, `/` -> `home` (the docs; None: the app serves `/` itself,
    as the console does its page), the body limit and the NaN check."""
    from fastapi.openapi.docs import get_redoc_html
    from fastapi_offline import FastAPIOffline

    limits = limits or ServerLimits()
    # validatorUrl None: Swagger UI would otherwise send the spec to validator.swagger.io for a badge.
    parameters = {"validatorUrl": None, **kwargs.pop("swagger_ui_parameters", {})}
    app = FastAPIOffline(title=title, redoc_url=None, swagger_ui_parameters=parameters, **kwargs)

    if home is not None:

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse(home)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> Any:
        return get_redoc_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{title} - ReDoc",
                              redoc_js_url=REDOC_JS, with_google_fonts=False,
                              redoc_favicon_url=f"{OFFLINE_ASSETS}/favicon.png")

    @app.get(REDOC_JS, include_in_schema=False)
    def redoc_js() -> Response:
        return Response(_redoc_js(), media_type="application/javascript")

    app.add_middleware(RequestGuard, max_bytes=limits.max_body_bytes, body_timeout_s=limits.body_timeout_s)
    return app


# --- health -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dependency:
    """One AWS service a process needs, with a check that raises (or returns a problem) when unusable."""

    name: str
    check: Callable[[], str | None]


def _once(make: Callable[[], Any]) -> Callable[[], Any]:
    """A boto3 client made on first use and kept: making one costs far more than the call."""
    return functools.cache(make)


def s3_bucket(bucket: str) -> Dependency:
    """S3 answers and the plan bucket exists."""

    def make() -> Any:
        from services.aws_clients import s3_client

        return s3_client(max_attempts=1, timeout_s=2.0)

    client = _once(make)

    def check() -> str | None:
        client().head_bucket(Bucket=bucket)
        return None

    return Dependency("s3", check)


def route53() -> Dependency:
    """Route 53's control API answers (one cheap call: GetHostedZoneCount)."""

    def make() -> Any:
        from services.aws_clients import route53_client

        return route53_client(max_attempts=1, timeout_s=2.0)

    client = _once(make)

    def check() -> str | None:
        client().get_hosted_zone_count()
        return None

    return Dependency("route53", check)


class Readiness:
    """Checks every dependency in a background thread every `interval_s` and answers /readyz from
    the last result at once: a slow AWS call never makes the health route slow, and /readyz never
    floods AWS (Route 53 allows five control-API requests per second per account: a check every
    5 s costs a process 0.2 of them). Checking starts with the app (`add_health_routes`)."""

    def __init__(self, dependencies: Iterable[Dependency], interval_s: float = 5.0):
        self.dependencies = tuple(dependencies)
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._result: dict[str, dict[str, Any]] = {
            d.name: {"ok": False, "detail": "not checked yet"} for d in self.dependencies
        }
        self._thread: threading.Thread | None = None

    def check_now(self) -> dict[str, dict[str, Any]]:
        result = {}
        for dep in self.dependencies:
            try:
                problem = dep.check()
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with its reason
                problem = f"{type(exc).__name__}: {exc}"[:300]
            result[dep.name] = {"ok": problem is None, "detail": problem}
        with self._lock:
            self._result = result
        return result

    def _run(self) -> None:
        while True:
            result = self.check_now()
            # Not ready yet (starting, or an outage): look again soon, so readiness returns quickly.
            time.sleep(self.interval_s if all(r["ok"] for r in result.values()) else min(1.0, self.interval_s))

    def check(self) -> tuple[bool, dict[str, dict[str, Any]]]:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="readiness", daemon=True)
                    self._thread.start()
        with self._lock:
            result = dict(self._result)
        return all(r["ok"] for r in result.values()), result


def add_health_routes(app: FastAPI, alive: Callable[[], dict[str, Any]], readiness: Readiness) -> None:
    """/healthz: 200 while the process serves. /readyz: 200 when every dependency answers, else 503."""
    readiness.check()  # starts the background checks now, so the first /readyz has a real answer soon

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, Any]:
        """Alive: 200 while the process serves (says nothing about S3 or Route 53). `pid` lets a
        supervisor tell its own child from another process that took the port first."""
        return {"status": "ok", "pid": os.getpid(), **alive()}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """Ready: 200 when every AWS service this process needs answers, else 503 naming the failing ones."""
        ok, checks = readiness.check()
        return JSONResponse({"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503)


# --- serving ----------------------------------------------------------------------------------


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for a request's headers.

    Armed when the connection opens and whenever a response completes (the next request may
    start); disarmed when h11 hands over a complete request head. When it passes with no
    request in progress the connection is closed: a client that never finishes its headers
    holds a connection for `header_timeout_s`, not for ever.
    """

    header_timeout_s: float = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        self._arm_header_deadline()  # before the base class handles a pipelined request, which disarms it
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._header_deadline_passed)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
            get_logger(component="http").info("http_header_timeout", client=":".join(map(str, self.client or ())))
            self.transport.close()


def uvicorn_config(app: Any, host: str, port: int, limits: ServerLimits | None = None):
    import uvicorn

    limits = limits or ServerLimits()
    protocol = type("HeaderDeadline", (HeaderDeadlineProtocol,), {"header_timeout_s": limits.header_timeout_s})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        timeout_keep_alive=limits.keep_alive_s,  # type: ignore[arg-type] - call_later takes a float
        h11_max_incomplete_event_size=limits.max_header_bytes,
        log_level="warning",
        access_log=False,
    )


def serve(app: Any, host: str, port: int, limits: ServerLimits | None = None) -> None:
    """Run `app` until SIGTERM/SIGINT with every timeout and limit of ServerLimits."""
    import uvicorn

    uvicorn.Server(uvicorn_config(app, host, port, limits)).run()
