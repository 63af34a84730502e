"""`dnsctl enactor`: run one enactor (protocol core + runner + HTTP status API)."""

from __future__ import annotations

import typer

from cli.client import err_console


def enactor(
    enactor_id: str = typer.Option("enactor-a", "--id", help="This enactor's name: the lock holder id and log field."),
    az: str = typer.Option("use1-az1", help="Availability zone this enactor runs in (shown in /status)."),
    host: str = typer.Option("127.0.0.1", help="Address of the status API."),
    port: int = typer.Option(8081, help="Port of the status API."),
    version_guard: bool | None = typer.Option(
        None, "--version-guard/--no-version-guard",
        help="Guarded (default) or legacy October-2025 behaviour; default from DNSCTL_VERSION_GUARD, else guarded.",
    ),
    poll_interval: float | None = typer.Option(None, help="Seconds between plan store polls (default 1.0)."),
    keep_plans: int | None = typer.Option(None, help="Keep the trees of this many plans before the applied one (default 5)."),
    allow_chaos: bool = typer.Option(False, "--allow-chaos", help="Allow fault injection (the race lab's chaos routes)."),
    cell: str | None = typer.Option(
        None, "--cell", help="Work for this cell only (cell-N: its plan stream and its endpoints' zones; default DNSCTL_CELL, else the regional system)."
    ),
) -> None:
    """Apply the newest plan to Route 53, one lock-protected machine per endpoint."""
    from pydantic import ValidationError

    from enactor.api import create_app
    from enactor.runner import Runner
    from enactor.settings import EnactorSettings
    from services.logs import configure
    from services.supervisor import port_free
    from services.web import serve

    overrides = {
        "enactor_id": enactor_id,
        "az": az,
        "host": host,
        "port": port,
        "version_guard": version_guard,
        "poll_interval": poll_interval,
        "keep_plans": keep_plans,
        "allow_chaos": allow_chaos or None,
        "cell": cell,
    }
    try:
        settings = EnactorSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        err_console.print(f"[red]error:[/red] bad enactor settings: {errs}", highlight=False)
        raise typer.Exit(2) from exc
    configure(process=settings.enactor_id)
    if not port_free(settings.host, settings.port):
        err_console.print(
            f"[red]error:[/red] port {settings.port} on {settings.host} is in use; stop what holds it or pass --port",
            highlight=False,
        )
        raise typer.Exit(1)
    app = create_app(Runner(settings))
    serve(app, settings.host, settings.port)


def register(app: typer.Typer) -> None:
    app.command("enactor")(enactor)
