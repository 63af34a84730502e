"""`dnsctl planner` (the service) and the commands that talk to it: plan, fleet, freeze, thaw.

Read commands print rich tables, or the service's JSON unchanged with --json. Every command finds
the planner through cli/client.py (--url, DNSCTL_PLANNER_URL, or the default port).
"""

from __future__ import annotations

import getpass
import json
import socket
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cli.client import cli_errors, err_console, service_client

console = Console()

UrlOpt = typer.Option(
    None, "--url", help="Planner base URL (default: DNSCTL_PLANNER_URL or http://127.0.0.1:8080)."
)
JsonOpt = typer.Option(False, "--json", help="Print the planner's JSON instead of a table.")
ForceOpt = typer.Option(False, "--force", help="Publish even if the safety check refuses the plan.")
DryRunOpt = typer.Option(
    False, "--dry-run", help="Print the plan diff and the safety verdict; publish and change nothing."
)

plan_app = typer.Typer(help="List, show, publish and restore plans.", no_args_is_help=True)
fleet_app = typer.Typer(help="Show and change the fleet the planner plans for.", no_args_is_help=True)
endpoint_app = typer.Typer(help="Add and remove endpoints, change their record types.", no_args_is_help=True)
fleet_app.add_typer(endpoint_app, name="endpoint")


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "cli"
    return f"{user}@{socket.gethostname()}"


def _print_json(body: Any) -> None:
    typer.echo(json.dumps(body, indent=2, sort_keys=True))


def _change(
    method: str, path: str, body: Any, *, force: bool, as_json: bool, url: str | None, dry_run: bool = False
) -> dict[str, Any]:
    """Send one fleet change and report what the planner did with it (published, queued, or previewed)."""
    with cli_errors():
        result = service_client("planner", url).request(
            method, path, json=body, params={"force": force or None, "dry_run": dry_run or None}
        )
    _print_json(result) if as_json else _say_change(result)
    return result


def _say_diff(diff: dict[str, Any] | None) -> None:
    if diff:
        from services.plan.diff import diff_lines

        for line in diff_lines(diff):
            console.print(line, highlight=False, markup=False)


def _say_verdict(result: dict[str, Any]) -> None:
    verdict = result.get("verdict")
    colour = {"safe": "green", "forced": "yellow"}.get(verdict or "", "red")
    console.print(f"safety verdict: [{colour}]{verdict}[/{colour}]")
    for v in result.get("violations") or []:
        console.print(f"  {v['endpoint']}: {v['message']}", highlight=False)
    if verdict == "unsafe":
        console.print("the planner would refuse it; --force publishes it anyway")


def _say_change(result: dict[str, Any]) -> None:
    if not result.get("changed", True):
        console.print(f"no change: {result['change']} (the fleet is already like that)")
    elif result.get("dry_run"):
        what = "queue it for the next scheduled plan" if result.get("queued") else "publish at once"
        console.print(f"dry run (nothing changed): {result['change']} would {what} ({result['lane']} lane)")
        _say_diff(result.get("diff"))
        _say_verdict(result)
    elif result.get("plan"):
        console.print(
            f"published plan [bold]{result['plan']['version']}[/bold] ({result['lane']} lane, "
            f"fleet revision {result.get('fleet_revision')}): {result['change']}"
        )
        _say_diff(result.get("diff"))
    else:
        when = result.get("next_run") or "the next scheduled run"
        console.print(
            f"queued (slow lane, fleet revision {result.get('fleet_revision')}) for the plan at {when}: "
            f"{result['change']}"
        )
        _say_diff(result.get("diff"))


def _say_publish(result: dict[str, Any], done: str) -> None:
    """A publish (or its dry run) of `plan trigger` / `plan restore`."""
    if result.get("dry_run"):
        console.print(f"dry run (nothing published): would publish plan {result['version']}")
        _say_diff(result.get("diff"))
        _say_verdict(result)
        return
    console.print(done)
    _say_diff(result.get("diff"))


# -- the service ------------------------------------------------------------------------------


def planner(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    plan_interval: float | None = typer.Option(
        None, help="Seconds between scheduled plans (default 30, or DNSCTL_PLANNER_PLAN_INTERVAL)."
    ),
    fleet_file: Path | None = typer.Option(None, help="Fleet file (.toml, .yaml); default: the demo fleet."),
    lbs: int | None = typer.Option(None, help="Generate a fleet of N load balancers (3..16000) instead."),
    seed: int | None = typer.Option(None, help="Seed of the generated fleet and of the traffic drift."),
    allow_chaos: bool = typer.Option(False, "--allow-chaos", help="Enable the chaos routes (plan bursts for the race lab)."),
    drift: float | None = typer.Option(
        None,
        help="Simulated traffic drift per scheduled plan, e.g. 0.02 (a demo setting; default 0 = off, "
        "or DNSCTL_PLANNER_DRIFT).",
    ),
    cell: str | None = typer.Option(
        None, "--cell", help="Plan for this cell only (cell-N: its own plan stream, fleet and endpoint; default DNSCTL_CELL, else the regional system)."
    ),
) -> None:
    """Run the planner: REST API (OpenAPI at /docs), metrics, and a plan every --plan-interval seconds."""
    from cli.service_start import require_port, settings_from_flags
    from planner.api import create_app
    from planner.fleet import FleetError
    from planner.settings import PlannerSettings
    from services.logs import configure
    from services.web import serve

    settings = settings_from_flags(PlannerSettings, "planner", {
        "host": host,
        "port": port,
        "plan_interval": plan_interval,
        "fleet_file": fleet_file,
        "lbs": lbs,
        "seed": seed,
        "allow_chaos": allow_chaos or None,
        "drift": drift,
        "cell": cell,
    })
    configure(process=settings.planner_id)
    try:
        app = create_app(settings)
    except (FleetError, ValueError) as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)  # paths stay whole
        raise typer.Exit(2) from exc
    require_port(settings.host, settings.port)
    serve(app, settings.host, settings.port)


# -- plans --------------------------------------------------------------------------------------


@plan_app.command("list")
def plan_list(
    limit: int = typer.Option(20, min=1, max=200, help="How many plans."),
    before: int | None = typer.Option(None, help="Only versions older than this (for paging)."),
    as_json: bool = JsonOpt,
    url: str | None = UrlOpt,
) -> None:
    """The newest plans, newest first."""
    with cli_errors():
        page = service_client("planner", url).get("/v1/plans", limit=limit, before=before)
    if as_json:
        _print_json(page)
        return
    table = Table(title=f"plans (newest: {page['newest_version']})")
    for col in ("version", "created", "lane", "endpoints", "targets", "reason"):
        table.add_column(col, justify="right" if col in ("version", "endpoints", "targets") else "left")
    for p in page["plans"]:
        if "invalid" in p:
            table.add_row(str(p["version"]), "-", "-", "-", "-", f"[red]INVALID: {p['invalid']}[/red]")
        else:
            table.add_row(
                str(p["version"]),
                p["created_at"],
                p["lane"],
                str(p["endpoints"]),
                str(p["targets"]),
                p["reason"],
            )
    console.print(table)
    if page.get("next_before"):
        console.print(f"older: dnsctl plan list --before {page['next_before']}")


@plan_app.command("show")
def plan_show(
    version: str = typer.Argument("latest", help="Plan version, or 'latest'."),
    as_json: bool = JsonOpt,
    url: str | None = UrlOpt,
) -> None:
    """One plan: every endpoint's targets with their weights."""
    if version != "latest" and not version.isdigit():
        raise typer.BadParameter("give a version number or 'latest'", param_hint="VERSION")
    with cli_errors():
        plan = service_client("planner", url).get(f"/v1/plans/{version}")
    if as_json:
        _print_json(plan)
        return
    console.print(
        f"plan [bold]{plan['version']}[/bold]  region {plan['region']}  lane {plan['lane']}  created {plan['created_at']}\n"
        f"reason: {plan['reason']}\nsha256: {plan['sha256']}"
    )
    for ep in plan["endpoints"]:
        table = Table(title=f"{ep['name']} ({', '.join(ep['record_types'])})")
        for col in ("lb", "az", "weight", "capacity", "addresses"):
            table.add_column(col, justify="right" if col in ("weight", "capacity") else "left")
        for t in ep["targets"]:
            weight = str(t["weight"]) if t["weight"] else "[yellow]0[/yellow]"
            table.add_row(
                t["lb_id"], t["az"], weight, str(t.get("capacity", "")), " ".join([*t["ipv4"], *t["ipv6"]])
            )
        console.print(table)


@plan_app.command("trigger")
def plan_trigger(
    reason: str = typer.Option("", help="Why (recorded in the plan)."),
    force: bool = ForceOpt,
    dry_run: bool = DryRunOpt,
    as_json: bool = JsonOpt,
    url: str | None = UrlOpt,
) -> None:
    """Publish a plan now."""
    with cli_errors():
        plan = service_client("planner", url).post(
            "/v1/plans", {"reason": reason}, force=force or None, dry_run=dry_run or None
        )
    if as_json:
        _print_json(plan)
    else:
        _say_publish(plan, f"published plan [bold]{plan.get('version')}[/bold] ({plan.get('key')})")


@plan_app.command("restore")
def plan_restore(
    version: int = typer.Argument(..., min=1, help="The plan whose content to publish again."),
    reason: str = typer.Option("", help="Why (recorded in the plan)."),
    force: bool = ForceOpt,
    dry_run: bool = DryRunOpt,
    as_json: bool = JsonOpt,
    url: str | None = UrlOpt,
) -> None:
    """Publish an old plan's content as a new version (rollback through the normal path)."""
    with cli_errors():
        plan = service_client("planner", url).post(
            f"/v1/plans/{version}/restore", {"reason": reason}, force=force or None, dry_run=dry_run or None
        )
    if as_json:
        _print_json(plan)
    else:
        _say_publish(plan, f"restored plan {version} as plan [bold]{plan.get('version')}[/bold]")


@plan_app.command("apply")
def plan_apply(
    version: str = typer.Argument("latest", help="Plan version, or 'latest'."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Required: print the batches, change nothing."),
    endpoint: list[str] = typer.Option([], help="Only this endpoint (repeat for more; default: all of the plan)."),
    guard: bool = typer.Option(True, "--guard/--no-guard", help="Decide as a guarded (default) or legacy enactor."),
    as_json: bool = JsonOpt,
) -> None:
    """The Route 53 change batches an enactor would submit for a plan right now (read-only: S3 and Route 53).

    Reads the plan from the plan store and each endpoint's zone from Route 53 (AWS settings and
    DNSCTL_BUCKET, like `freeze --direct`), and asks the enactor core what it would do.
    """
    if not dry_run:
        err_console.print(
            "[red]error:[/red] applying plans is the enactors' job; `plan apply` only previews (--dry-run). "
            "To make an old plan the newest, use `dnsctl plan restore VERSION`.",
            highlight=False,
        )
        raise typer.Exit(2)
    if version != "latest" and not version.isdigit():
        raise typer.BadParameter("give a version number or 'latest'", param_hint="VERSION")
    from botocore.exceptions import BotoCoreError, ClientError

    from cli.plan_preview import preview_plan, show
    from enactor.protocol import CoreSettings
    from services.aws_clients import route53_client
    from services.plan.store import PlanStore

    store = PlanStore.from_env()
    with cli_errors():
        plan = store.newest() if version == "latest" else store.get(int(version))
    if plan is None:
        err_console.print("[red]error:[/red] no plan has been published yet", highlight=False)
        raise typer.Exit(1)
    try:
        results = preview_plan(CoreSettings("dry-run", version_guard=guard), plan, route53_client(), endpoint)
    except (ClientError, BotoCoreError) as exc:
        err_console.print(f"[red]error:[/red] cannot read the zones of plan {plan.version} from Route 53: {exc}", highlight=False)
        raise typer.Exit(1) from exc
    show(console, results, f"dry run of plan {plan.version} (nothing is submitted):", as_json)


@plan_app.command("diff")
def plan_diff_cmd(
    old: int = typer.Argument(..., min=1, metavar="A", help="The older plan version."),
    new: int = typer.Argument(..., min=1, metavar="B", help="The newer plan version."),
    as_json: bool = JsonOpt,
    url: str | None = UrlOpt,
) -> None:
    """What changes from plan A to plan B, per endpoint: LBs added, removed, re-weighted, addresses, record types."""
    from services.plan.diff import plan_diff
    from services.plan.model import Plan

    client = service_client("planner", url)
    with cli_errors():
        a = Plan.model_validate(client.get(f"/v1/plans/{old}"))
        b = Plan.model_validate(client.get(f"/v1/plans/{new}"))
    diff = plan_diff(a, b)
    _print_json(diff.as_dict()) if as_json else _say_diff(diff.as_dict())


# -- fleet --------------------------------------------------------------------------------------


@fleet_app.command("show")
def fleet_show(as_json: bool = JsonOpt, url: str | None = UrlOpt) -> None:
    """Endpoints and load balancers, with drained AZs."""
    with cli_errors():
        fleet = service_client("planner", url).get("/v1/fleet")
    if as_json:
        _print_json(fleet)
        return
    drained = set(fleet["drained_azs"])
    azs = ", ".join(f"{az} [yellow](drained)[/yellow]" if az in drained else az for az in fleet["azs"])
    console.print(f"region {fleet['region']}  AZs: {azs}")
    for ep in fleet["endpoints"]:
        table = Table(title=f"{ep['name']} ({', '.join(ep['record_types'])}, zone {ep['hosted_zone']})")
        for col in ("lb", "az", "capacity", "state", "addresses"):
            table.add_column(col, justify="right" if col == "capacity" else "left")
        for lb in fleet["load_balancers"]:
            if lb["endpoint"] != ep["name"]:
                continue
            state = lb["state"] if lb["state"] == "active" else f"[yellow]{lb['state']}[/yellow]"
            table.add_row(
                lb["id"], lb["az"], str(lb["capacity"]), state, " ".join([*lb["ipv4"], *lb["ipv6"]])
            )
        console.print(table)


@fleet_app.command("add-lb")
def fleet_add_lb(
    lb_id: str = typer.Argument(..., metavar="ID", help="Load balancer id (lower case, digits, dashes)."),
    az: str = typer.Option(..., help="AZ id, e.g. use1-az1."),
    endpoint: str = typer.Option(..., help="The endpoint it serves."),
    capacity: int = typer.Option(..., help="Capacity (same units as the rest of the fleet)."),
    ipv4: list[str] = typer.Option([], help="IPv4 address (repeat for more)."),
    ipv6: list[str] = typer.Option([], help="IPv6 address (repeat for more)."),
    state: str = typer.Option("active", help="active, draining or retired."),
    force: bool = ForceOpt,
    dry_run: bool = DryRunOpt,
    as_json: bool = JsonOpt,
    url: str | None = UrlOpt,
) -> None:
    """Add a load balancer (joins the next scheduled plan)."""
    body = {
        "id": lb_id,
        "az": az,
        "endpoint": endpoint,
        "capacity": capacity,
        "ipv4": ipv4,
        "ipv6": ipv6,
        "state": state,
    }
    _change("POST", "/v1/fleet/load-balancers", body, force=force, as_json=as_json, url=url, dry_run=dry_run)


@fleet_app.command("set-capacity")
def fleet_set_capacity(
    lb_id: str = typer.Argument(..., metavar="ID"),
    capacity: int = typer.Argument(..., min=0),
    force: bool = ForceOpt,
    dry_run: bool = DryRunOpt,
    as_json: bool = JsonOpt,
    url: str | None = UrlOpt,
) -> None:
    """Change a load balancer's capacity (slow lane: coalesced into the next scheduled plan)."""
    _change(
        "PATCH",
        f"/v1/fleet/load-balancers/{lb_id}",
        {"capacity": capacity},
        force=force,
        as_json=as_json,
        url=url,
        dry_run=dry_run,
    )


@fleet_app.command("drain-az")
def fleet_drain_az(
    az: str = typer.Argument(...),
    force: bool = ForceOpt,
    dry_run: bool = DryRunOpt,
    as_json: bool = JsonOpt,
    url: str | None = UrlOpt,
) -> None:
    """Take an AZ out of service now (fast lane: publishes at once)."""
    _change("POST", f"/v1/fleet/azs/{az}/drain", None, force=force, as_json=as_json, url=url, dry_run=dry_run)


@fleet_app.command("undrain-az")
def fleet_undrain_az(
    az: str = typer.Argument(...),
    force: bool = ForceOpt,
    dry_run: bool = DryRunOpt,
    as_json: bool = JsonOpt,
    url: str | None = UrlOpt,
) -> None:
    """Bring an AZ back (slow lane: the next scheduled plan carries it)."""
    _change("POST", f"/v1/fleet/azs/{az}/undrain", None, force=force, as_json=as_json, url=url, dry_run=dry_run)


@fleet_app.command("load")
def fleet_load(
    path: Path = typer.Argument(..., metavar="FILE", help="Fleet file (.toml, .yaml) to make the desired fleet."),
    yes: bool = typer.Option(False, "--yes", help="Apply it (without: print the diff and change nothing)."),
    reason: str = typer.Option("", help="Why (recorded in the fleet and the plan)."),
    force: bool = ForceOpt,
    dry_run: bool = DryRunOpt,
    as_json: bool = JsonOpt,
    url: str | None = UrlOpt,
) -> None:
    """Replace the desired fleet from a file: prints the diff, applies it with --yes as one compare-and-swap."""
    from planner.fleet import FleetError, load_fleet_file

    try:
        fleet = load_fleet_file(path).model_dump(mode="json")
    except FleetError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    body = {"fleet": fleet, "reason": reason}
    preview = _change("PUT", "/v1/fleet", body, force=force, as_json=as_json, url=url, dry_run=True)
    if dry_run or not yes or not preview.get("changed", True):
        if not (dry_run or as_json) and preview.get("changed", True):
            console.print(f"not applied: re-run with --yes to apply it over fleet revision {preview['fleet_revision']}")
        return
    # One compare-and-swap over exactly the revision the diff was made against.
    body["expected_revision"] = preview["fleet_revision"]
    _change("PUT", "/v1/fleet", body, force=force, as_json=as_json, url=url)


@endpoint_app.command("add")
def endpoint_add(
    name: str = typer.Argument(..., help="The DNS name, e.g. cells.example.com."),
    record_type: list[str] = typer.Option(["A"], "--record-type", help="A or AAAA (repeat for both)."),
    hosted_zone: str = typer.Option("", help="Its hosted zone (default: the name itself)."),
    lbs_file: Path | None = typer.Option(
        None, help="YAML or JSON list of its first load balancers (same fields as `fleet add-lb`)."
    ),
    force: bool = ForceOpt,
    dry_run: bool = DryRunOpt,
    as_json: bool = JsonOpt,
    url: str | None = UrlOpt,
) -> None:
    """Add an endpoint (slow lane). Without LBs its plan has no address: give --lbs-file, or --force.

    The enactors serve it once its hosted zone exists: `dnsctl zones ensure --endpoint NAME`.
    """
    import yaml

    lbs: list[Any] = []
    if lbs_file is not None:
        try:
            lbs = yaml.safe_load(lbs_file.read_text()) or []
        except (OSError, yaml.YAMLError) as exc:
            err_console.print(f"[red]error:[/red] cannot read {lbs_file}: {exc}", highlight=False)
            raise typer.Exit(2) from exc
        if not isinstance(lbs, list):
            err_console.print(f"[red]error:[/red] {lbs_file} must hold a list of load balancers", highlight=False)
            raise typer.Exit(2)
    body = {
        "endpoint": {"name": name, "hosted_zone": hosted_zone, "record_types": record_type},
        "load_balancers": lbs,
    }
    _change("POST", "/v1/fleet/endpoints", body, force=force, as_json=as_json, url=url, dry_run=dry_run)


@endpoint_app.command("remove")
def endpoint_remove(
    name: str = typer.Argument(...),
    force: bool = ForceOpt,
    dry_run: bool = DryRunOpt,
    as_json: bool = JsonOpt,
    url: str | None = UrlOpt,
) -> None:
    """Remove an endpoint and its LBs (fast lane; the safety check wants --force for it)."""
    _change("DELETE", f"/v1/fleet/endpoints/{name}", None, force=force, as_json=as_json, url=url, dry_run=dry_run)


@endpoint_app.command("set-types")
def endpoint_set_types(
    name: str = typer.Argument(...),
    record_type: list[str] = typer.Option(..., "--record-type", help="A or AAAA (repeat for both)."),
    force: bool = ForceOpt,
    dry_run: bool = DryRunOpt,
    as_json: bool = JsonOpt,
    url: str | None = UrlOpt,
) -> None:
    """Change the record types an endpoint serves (fast lane: publishes at once)."""
    _change(
        "PATCH",
        f"/v1/fleet/endpoints/{name}",
        {"record_types": record_type},
        force=force,
        as_json=as_json,
        url=url,
        dry_run=dry_run,
    )


# -- the kill switch ----------------------------------------------------------------------------


DirectOpt = typer.Option(
    False,
    "--direct",
    help="Write the freeze marker straight to S3 (DNSCTL_BUCKET, AWS settings): works with no planner running.",
)


def freeze(
    reason: str = typer.Option(..., "--reason", help="Why (shown in status and logs)."),
    by: str | None = typer.Option(None, help="Who (default: user@host)."),
    as_json: bool = JsonOpt,
    url: str | None = UrlOpt,
    direct: bool = DirectOpt,
) -> None:
    """Kill switch: stop all publishing (and enactors) until `dnsctl thaw`."""
    if direct:
        from services.plan.store import PlanStore

        store = PlanStore.from_env()
        with cli_errors():
            already = store.freeze_state()
            marker = already or store.freeze(reason, by or _who())
        state = {"frozen": True, "newly_frozen": already is None, **marker.model_dump()}
    else:
        with cli_errors():
            state = service_client("planner", url).post(
                "/v1/planner/freeze", {"reason": reason, "by": by or _who()}
            )
    if as_json:
        _print_json(state)
    elif state["newly_frozen"]:
        console.print(f"frozen by {state['by']} at {state['at']}: {state['reason']}")
    else:
        console.print(f"already frozen (by {state['by']} at {state['at']}: {state['reason']})")


def thaw(
    by: str | None = typer.Option(None, help="Who (default: user@host)."),
    as_json: bool = JsonOpt,
    url: str | None = UrlOpt,
    direct: bool = DirectOpt,
) -> None:
    """Lift the freeze: publishing resumes with the next plan."""
    if direct:
        from services.plan.store import PlanStore

        store = PlanStore.from_env()
        with cli_errors():
            marker = store.freeze_state()
            if marker is not None:
                store.thaw(by or _who())
        result = {"frozen": False, "lifted": marker.model_dump() if marker else None}
    else:
        with cli_errors():
            result = service_client("planner", url).post("/v1/planner/thaw", {"by": by or _who()})
    if as_json:
        _print_json(result)
    elif result["lifted"]:
        lifted = result["lifted"]
        console.print(f"thawed (was frozen by {lifted['by']} at {lifted['at']}: {lifted['reason']})")
    else:
        console.print("not frozen; nothing to do")


def register(app: typer.Typer) -> None:
    app.command("planner")(planner)
    app.add_typer(plan_app, name="plan")
    app.add_typer(fleet_app, name="fleet")
    app.command("freeze")(freeze)
    app.command("thaw")(thaw)
