"""Run the emulator: moto's WSGI dispatcher, patched by moto_gaps, behind uvicorn (through
a2wsgi's WSGI adapter). With a data directory every accepted change is journaled before its reply
and replayed at start (services/emulator/journal.py); with only a state file the state is saved on
SIGTERM/SIGINT. moto's control routes (POST /moto-api/..., among them reset) need the API token
and are off without one.

Not werkzeug's development server: it answers every request with `Connection: close`, so each
boto3 call of every process cost a new connection and left one socket in TIME-WAIT (about 2,400
per stack run, enough to make the next stack's ports look taken). uvicorn keeps connections
alive, and botocore's pool reuses them.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services import auth
from services.emulator import moto_gaps, state_file
from services.emulator.journal import Journal, JournalWsgi
from services.emulator.route53_state import Settings
from services.logs import get_logger

METRICS_PATH = "/_emulator/metrics"  # '_' cannot start a bucket name, so no S3 path collides


@dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 4566
    state_file: Path | None = None
    data_dir: Path | None = None  # journal + state file: every acknowledged change survives kill -9
    route53: Settings = field(default_factory=Settings)
    throttle: tuple[float, float] | None = None  # (requests per second, burst) or None for off


class MotoApiGuard:
    """moto's control routes (POST /moto-api/reset, seed, ...) wipe or rewrite state with no
    credentials; here they need `Authorization: Bearer <API token>` and are off with no token."""

    def __init__(self, app: Callable, token: str | None):
        self.app, self.token = app, token

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/moto-api/") and environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            if self.token is None:
                return _plain(start_response, "403 Forbidden", "moto's control routes are off: no API token is configured")
            if not auth.bearer_matches(environ.get("HTTP_AUTHORIZATION"), self.token):
                return _plain(start_response, "401 Unauthorized", "moto's control routes need the API token (Bearer)")
        return self.app(environ, start_response)


def _plain(start_response: Callable, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def build_app(
    config: EmulatorConfig,
) -> tuple[moto_gaps.EmulatorWsgi, moto_gaps.Route53Store, Journal | None, Callable]:
    """The served app, the Route 53 store, the journal (with a data dir) and the app replay goes through."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    store = moto_gaps.install(config.route53)
    dispatcher: Callable = DomainDispatcherApplication(create_backend_app)
    journal = Journal(config.data_dir, store) if config.data_dir is not None else None
    inner = JournalWsgi(dispatcher, journal) if journal is not None else dispatcher
    app = moto_gaps.EmulatorWsgi(
        MotoApiGuard(inner, auth.load_token()),
        throttle=config.throttle,
        extra_routes={METRICS_PATH: lambda: (CONTENT_TYPE_LATEST, generate_latest())},
    )
    return app, store, journal, dispatcher


def serve(config: EmulatorConfig) -> None:
    log = get_logger(component="emulator")
    app, store, journal, dispatcher = build_app(config)
    if journal is not None:
        journal.recover(dispatcher)
    elif config.state_file is not None:
        state_file.load(config.state_file, store)
    server = KeepAliveServer(app, config.host, config.port)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("emulator_stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker = threading.Thread(target=server.serve_forever, name="emulator-http", daemon=True)
    worker.start()
    log.info(
        "emulator_listening",
        host=config.host,
        port=server.server_port,
        state_file=str(config.state_file) if config.state_file else None,
        data_dir=str(config.data_dir) if config.data_dir else None,
        propagation_delay_s=config.route53.propagation_delay_s,
        prior_request_check=config.route53.prior_request_check,
        throttle=list(config.throttle) if config.throttle else None,
        max_record_sets_per_zone=config.route53.limits.max_record_sets_per_zone,
    )
    while not stop.wait(0.5):
        pass
    server.shutdown()
    worker.join(timeout=10)
    if journal is not None:
        journal.close()
    elif config.state_file is not None:
        state_file.save(config.state_file, store)
    server.server_close()
    log.info("emulator_stopped")


class KeepAliveServer:
    """moto's WSGI app on uvicorn in a thread, with the shutdown calls serve() needs."""

    def __init__(self, app, host: str, port: int):
        import socket

        import uvicorn
        from a2wsgi import WSGIMiddleware

        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))  # bound here, so a taken port fails at once and port 0 is known
        self.server_port = self._sock.getsockname()[1]
        config = uvicorn.Config(WSGIMiddleware(app, workers=16), log_level="warning", access_log=False,
                                lifespan="off", timeout_keep_alive=30, server_header=False)
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # serve() owns SIGTERM/SIGINT (uvicorn < 0.29)

    def serve_forever(self) -> None:
        import asyncio

        asyncio.run(self._server.serve(sockets=[self._sock]))

    def shutdown(self) -> None:
        self._server.should_exit = True

    def server_close(self) -> None:
        self._sock.close()
