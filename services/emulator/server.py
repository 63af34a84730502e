"""Run the emulator: moto's WSGI dispatcher, patched by moto_gaps, behind uvicorn (through
a2wsgi's WSGI adapter); save the state on SIGTERM/SIGINT when a state file is configured.

Not werkzeug's development server: it answers every request with `Connection: close`, so each
boto3 call of every process cost a new connection and left one socket in TIME-WAIT (about 2,400
per stack run, enough to make the next stack's ports look taken). uvicorn keeps connections
alive, and botocore's pool reuses them.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.emulator import moto_gaps, state_file
from services.emulator.route53_state import Settings
from services.logs import get_logger

METRICS_PATH = "/_emulator/metrics"  # '_' cannot start a bucket name, so no S3 path collides


@dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 4566
    state_file: Path | None = None
    route53: Settings = field(default_factory=Settings)
    throttle: tuple[float, float] | None = None  # (requests per second, burst) or None for off


def build_app(config: EmulatorConfig) -> tuple[moto_gaps.EmulatorWsgi, moto_gaps.Route53Store]:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    store = moto_gaps.install(config.route53)
    app = moto_gaps.EmulatorWsgi(
        DomainDispatcherApplication(create_backend_app),
        throttle=config.throttle,
        extra_routes={METRICS_PATH: lambda: (CONTENT_TYPE_LATEST, generate_latest())},
    )
    return app, store


def serve(config: EmulatorConfig) -> None:
    log = get_logger(component="emulator")
    app, store = build_app(config)
    if config.state_file is not None:
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
        propagation_delay_s=config.route53.propagation_delay_s,
        prior_request_check=config.route53.prior_request_check,
        throttle=list(config.throttle) if config.throttle else None,
        max_record_sets_per_zone=config.route53.limits.max_record_sets_per_zone,
    )
    while not stop.wait(0.5):
        pass
    server.shutdown()
    worker.join(timeout=10)
    if config.state_file is not None:
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
