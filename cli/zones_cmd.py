"""`dnsctl zones`: create and list the hosted zones of the fleet's endpoints (one zone per endpoint),
and adopt an endpoint whose records another tool manages today.

`dnsctl up` and docker-compose run `zones ensure` once, after the planner is up and before any
enactor starts. On AWS the CloudFormation stack creates the zones and this command only confirms
them; the code path is the same.

`zones adopt ENDPOINT` reads the name's A/AAAA record sets (plain or weighted), posts them to the
planner as a new endpoint with one load balancer per record set member (its first plan, published
through the plan store like any other), and waits until an enactor has flipped the root to that
plan's tree. The answers keep the same addresses throughout (services/zones.py says how).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from cli.client import cli_errors, err_console, service_client

if TYPE_CHECKING:
    from services.zones import Adoption

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


def _show(adoption: Adoption, az: str) -> None:
    found = Table("record set", "type", "weight", "ttl", "addresses", title=f"{adoption.endpoint} now (zone {adoption.hosted_zone}, {adoption.zone_id})", title_justify="left")
    for r in adoption.records:
        found.add_row(r.set_identifier or "(simple)", r.type, "" if r.weight is None else str(r.weight), str(r.ttl), " ".join(r.values))
    console.print(found)
    fleet = Table("load balancer", "az", "capacity", "ipv4", "ipv6", title="fleet entries for the planner", title_justify="left")
    for lb in adoption.load_balancers:
        fleet.add_row(lb["id"], az, str(lb["capacity"]), " ".join(lb["ipv4"]), " ".join(lb["ipv6"]))
    console.print(fleet)


def _root_tree(adoption: Adoption, client) -> str | None:
    """The tree id every address type of the root aliases, or None while any is not flipped yet."""
    from enactor import layout
    from services.zones import records_at

    roots = [r for r in records_at(adoption.endpoint, adoption.zone_id, client) if r["Type"] in adoption.record_types]
    trees = {layout.tree_id_of(r["AliasTarget"]["DNSName"], adoption.endpoint) if r.get("AliasTarget") else None for r in roots}
    return trees.pop() if len(trees) == 1 and len(roots) == len(adoption.record_types) else None


@zones_app.command("adopt")
def adopt(
    endpoint: str = typer.Argument(..., help="The DNS name to take over, e.g. api.example.com"),
    zone: str = typer.Option(None, help="Its hosted zone's name (default: the name itself or its nearest parent that has a zone)."),
    az: str = typer.Option(None, help="The AZ the adopted load balancers are filed under (default: the fleet's first AZ)."),
    prefix: str = typer.Option("adopted", help="Prefix of the load balancer ids made from the record sets."),
    planner: str = typer.Option(None, help="Planner URL."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what was found and the fleet entries; change nothing."),
    wait_s: float = typer.Option(120.0, "--wait", min=0, help="Seconds to wait for the cut-over (0: do not wait)."),
) -> None:
    """Import ENDPOINT's existing A/AAAA records as its first plan and cut over without an empty answer."""
    from botocore.exceptions import BotoCoreError, ClientError

    from services import logs
    from services.aws_clients import route53_client
    from services.zones import (
        AdoptRefused,
        ZoneNotFound,
        adoption_of,
        enclosing_zone,
        find_zone_id,
        records_at,
    )

    logs.configure(process="zones")
    log = logs.get_logger()
    client = route53_client()
    try:
        if zone:
            zone_name, zone_id = zone, find_zone_id(zone, client)
            if zone_id is None:
                raise ZoneNotFound(zone)
        else:
            zone_name, zone_id = enclosing_zone(endpoint, client)
        adoption = adoption_of(endpoint, zone_name, zone_id, records_at(endpoint, zone_id, client), prefix)
    except (AdoptRefused, ZoneNotFound) as exc:
        console.print(f"[red]cannot adopt {endpoint}: {exc}[/red]")
        raise typer.Exit(1) from exc
    except (ClientError, BotoCoreError) as exc:
        console.print(f"[red]Route 53 is not reachable: {exc}[/red]")
        raise typer.Exit(1) from exc
    planner_client = service_client("planner", planner)
    with cli_errors():
        fleet = planner_client.get("/v1/fleet")
    if any(e["name"] == adoption.endpoint for e in fleet.get("endpoints", [])):
        console.print(f"[red]cannot adopt {adoption.endpoint}: the planner's fleet already has it[/red]")
        raise typer.Exit(1)
    az = az or fleet["azs"][0]
    _show(adoption, az)
    if adoption.weighted:
        console.print("weighted set: folded first into one plain record set of the same addresses (one batch), weights return with the flip")
    if dry_run:
        console.print("dry run: nothing was changed")
        return
    try:
        if adoption.weighted:
            client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={
                "Comment": f"dnsctl zones adopt: fold the weighted set of {adoption.endpoint}",
                "Changes": [c.to_boto() for c in adoption.fold_changes()]})
            log.info("adopt_folded", endpoint=adoption.endpoint, members=len(adoption.records))
    except ClientError as exc:
        console.print(f"[red]Route 53 refused the fold (the records changed since they were read?): {exc}[/red]")
        raise typer.Exit(1) from exc
    try:
        with cli_errors():
            result = planner_client.post("/v1/fleet/endpoints", json=adoption.fleet_entries(az), publish="true")
    except typer.Exit:
        if adoption.weighted:
            client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [c.to_boto() for c in adoption.unfold_changes()]})
            console.print("the weighted set was put back as it was")
        raise
    version = (result.get("plan") or {}).get("version")
    log.info("adopt_published", endpoint=adoption.endpoint, plan_version=version, load_balancers=len(adoption.load_balancers))
    console.print(f"published plan {version}: {result.get('change')}")
    if wait_s <= 0:
        return
    deadline = time.monotonic() + wait_s
    while (tree := _root_tree(adoption, client)) is None:
        if time.monotonic() > deadline:
            console.print(f"[yellow]no enactor flipped {adoption.endpoint} within {wait_s:.0f}s: the old records still answer; check `dnsctl status`[/yellow]")
            raise typer.Exit(1)
        time.sleep(0.2)
    log.info("adopt_cut_over", endpoint=adoption.endpoint, plan_version=version, tree_id=tree)
    console.print(f"cut over: {adoption.endpoint} -> tree {tree} (plan {version}); dnsctl manages it now")


def register(app: typer.Typer) -> None:
    app.add_typer(zones_app, name="zones")
