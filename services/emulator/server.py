"""Run the emulator: moto's WSGI dispatcher, patched by moto_gaps, behind a threaded werkzeug
server; save the state on SIGTERM/SIGINT when a state file is configured.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.serving import make_server

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
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    log = get_logger(component="emulator")
    app, store = build_app(config)
    if config.state_file is not None:
        state_file.load(config.state_file, store)
    server = make_server(config.host, config.port, app, threaded=True, request_handler=MotoRequestHandler)
    server.daemon_threads = True
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
