"""`dnsctl emulator`: the strict local S3 + Route 53 emulator (moto plus Route 53's real rules)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("emulator")
    def emulator(
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(4566, help="Port to listen on."),
        state_file: Path | None = typer.Option(
            None, help="Restore state from this file on start; save to it on SIGTERM/SIGINT."
        ),
        data_dir: Path | None = typer.Option(
            None,
            help="Keep the state here: every accepted change is journaled (fsync) before its reply and "
            "replayed at start, so even kill -9 loses no acknowledged change.",
        ),
        propagation_delay: float = typer.Option(
            0.0,
            "--propagation-delay",
            min=0.0,
            help="Seconds a change stays PENDING before GetChange says INSYNC.",
        ),
        throttle: bool = typer.Option(
            False,
            "--throttle/--no-throttle",
            help="Refuse Route 53 requests over the account rate with Throttling.",
        ),
        throttle_rate: float = typer.Option(
            10.0, min=0.001, help="Route 53 requests per second per account when throttling."
        ),
        throttle_burst: float = typer.Option(
            50.0, min=1.0, help="Route 53 request burst per account when throttling."
        ),
        prior_request_check: bool = typer.Option(
            False,
            "--prior-request-check/--no-prior-request-check",
            help="Refuse a change to a zone whose previous change is PENDING (PriorRequestNotComplete).",
        ),
        switch_interval: float | None = typer.Option(
            None,
            min=1e-6,
            help="Python thread switch interval in seconds (default 0.005); lower it to make races between requests more likely.",
        ),
        max_record_sets_per_zone: int = typer.Option(
            10000, min=1, help="Record-set quota per hosted zone (Route 53's default is 10,000)."
        ),
    ) -> None:
        """Run moto's server for S3 and Route 53 with Route 53's real change-batch semantics."""
        from services.emulator.route53_state import Settings
        from services.emulator.server import EmulatorConfig, serve
        from services.logs import configure
        from services.route53.engine import Limits

        configure(process="emulator")
        if switch_interval is not None:
            import sys

            sys.setswitchinterval(switch_interval)
        serve(
            EmulatorConfig(
                host=host,
                port=port,
                state_file=state_file,
                data_dir=data_dir,
                route53=Settings(
                    limits=Limits(max_record_sets_per_zone=max_record_sets_per_zone),
                    propagation_delay_s=propagation_delay,
                    prior_request_check=prior_request_check,
                ),
                throttle=(throttle_rate, throttle_burst) if throttle else None,
            )
        )
