"""`dnsctl zones`: create and list the hosted zones of the fleet's endpoints (one zone per endpoint).

`dnsctl up` and docker-compose run `zones ensure` once, after the planner is up and before any
enactor starts. On AWS the CloudFormation stack creates the zones and this command only confirms
them; the code path is the same.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from cli.client import cli_errors, err_console, service_client

zones_app = typer.Typer(help="Hosted zones of the endpoints.", no_args_is_help=True)
console = Console()


def _endpoint_names(planner: str | None, endpoint: list[str]) -> list[str]:
    if endpoint:
        return list(endpoint)
    with cli_errors():
        fleet = service_client("planner", planner).get("/v1/fleet")
    return [e["name"] for e in fleet.get("endpoints", [])]


@zones_app.command("ensure")
def ensure(
    planner: str = typer.Option(None, help="Planner URL to read the fleet's endpoints from."),
    endpoint: list[str] = typer.Option([], "--endpoint", help="Endpoint names (instead of asking the planner)."),
    aws: bool = typer.Option(False, "--aws", help="Allow creating zones in a real AWS account (refused without it)."),
) -> None:
    """Create a hosted zone for every endpoint that has none (idempotent)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from services import logs
    from services.aws_clients import RealAccountRefused
    from services.zones import ensure_zones

    logs.configure(process="zones")
    log = logs.get_logger()
    names = _endpoint_names(planner, endpoint)
    try:
        created = ensure_zones(names, real_account=aws)
    except RealAccountRefused as exc:
        log.error("zones_refused", reason="real_account_without_aws_flag")
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    except (ClientError, BotoCoreError) as exc:
        log.error("zones_failed", error=str(exc))
        console.print(f"[red]could not create hosted zones: {exc}[/red]")
        raise typer.Exit(1) from exc
    for name, zone_id in created.items():
        log.info("zone_created", endpoint=name, zone_id=zone_id)
    log.info("zones_ready", endpoints=len(names), created=len(created))


@zones_app.command("list")
def list_zones(
    planner: str = typer.Option(None, help="Planner URL to read the fleet's endpoints from."),
    endpoint: list[str] = typer.Option([], "--endpoint"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show each endpoint's hosted zone id (or that it is missing)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from services.zones import find_zone_id

    names = _endpoint_names(planner, endpoint)
    try:
        rows = {name: find_zone_id(name) for name in names}
    except (ClientError, BotoCoreError) as exc:
        console.print(f"[red]Route 53 is not reachable: {exc}[/red]")
        raise typer.Exit(1) from exc
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("endpoint", "hosted zone")
    for name, zone_id in rows.items():
        table.add_row(name, zone_id or "[red]missing: run `dnsctl zones ensure`[/red]")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(zones_app, name="zones")
