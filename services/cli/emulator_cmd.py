"""`dnsctl emulator`: the strict local S3 + Route 53 emulator."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("emulator")
    def emulator(
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(4566, help="Port to listen on."),
    ) -> None:
        """Run moto's server for S3 and Route 53 with Route 53's real change-batch semantics."""
        from services.emulator.server import serve
        from services.logs import configure

        configure(process="emulator")
        serve(host, port)
