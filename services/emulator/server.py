"""Run the emulator: moto's WSGI dispatcher behind a threaded werkzeug server."""

from __future__ import annotations

from werkzeug.serving import make_server

from services.logs import get_logger


def serve(host: str, port: int) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    get_logger().info("emulator_listening", host=host, port=port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
