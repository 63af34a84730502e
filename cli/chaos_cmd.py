"""`dnsctl chaos`: make the running stack unlucky on purpose, by hand (the race lab's controls).

    dnsctl chaos enactor-c --lock-failures 5 --delay-before-flip 20
    dnsctl chaos enactor-a --route53-latency-ms 800 --backoff-multiplier 3
    dnsctl chaos enactor-b --pause            (--resume)
    dnsctl chaos planner --burst-every-ms 250 --burst-for-s 5
    dnsctl chaos show                         every enactor's faults and the planner's burst
    dnsctl chaos clear                        all faults off, enactors resumed, burst stopped

The enactors serve the routes of enactor/chaos.py, the planner those of planner/burst.py; both
refuse unless started with --allow-chaos (`dnsctl up` does) and require the API token. Each
service is found as every CLI command finds it (cli/client.py: --url, DNSCTL_<NAME>_URL,
or the stack's default port).

The October race by hand, on `dnsctl up --no-version-guard` (the steps `dnsctl race` scripts, see
lab/race/scenario.py; a 20 s hold on each flip leaves time to type):

    dnsctl chaos enactor-a --pause; dnsctl chaos enactor-b --pause
    dnsctl chaos enactor-c --lock-failures 1000000      # from now on it loses every lock attempt
    dnsctl plan trigger --reason "the plan enactor-c holds on to"
    dnsctl chaos enactor-a --resume; dnsctl chaos enactor-b --resume
    dnsctl chaos planner --burst-every-ms 250 --burst-for-s 3
    dnsctl chaos enactor-b --pause; dnsctl chaos enactor-c --pause
    dnsctl chaos enactor-a --delay-before-flip 20
    dnsctl chaos enactor-c --lock-failures 0 --delay-before-flip 20
    dnsctl plan trigger --reason "plan 145"
    dnsctl chaos enactor-a --pause      # while it holds back its flip: it stops after the flip
    dnsctl chaos enactor-c --resume     # it flips its stale plan in (20 s later) ...
    dnsctl chaos enactor-c --pause      # ... while holding it back: it stops after that flip
    dnsctl chaos enactor-a --resume     # its clean-up deletes the tree the root now serves
    dnsctl chaos clear; dnsctl plan trigger
    dig @127.0.0.1 -p 8053 dynamodb.us-east-1.amazonaws.com A    # NOERROR, no addresses
    dnsctl status; dnsctl timeline --stack; dnsctl repair dynamodb.us-east-1.amazonaws.com --break-lock
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cli.client import ServiceError, cli_errors, service_client
from services.stack import ENACTORS

console = Console()
chaos_app = typer.Typer(help="Fault injection for the race lab: enactors' faults and the planner's plan burst.", no_args_is_help=True)

UrlOpt = typer.Option(None, "--url", help="The service's base URL (default: DNSCTL_<NAME>_URL or the stack's port).")


def _faults_line(faults: dict[str, Any]) -> str:
    on = []
    if faults.get("paused"):
        on.append("PAUSED")
    if faults.get("lock_failures"):
        on.append(f"loses the next {faults['lock_failures']} lock attempts")
    if faults.get("delay_before_flip_s"):
        on.append(f"holds back every flip {faults['delay_before_flip_s']:g} s")
    if faults.get("route53_latency_ms"):
        on.append(f"Route 53 +{faults['route53_latency_ms']} ms")
    if faults.get("route53_error_rate"):
        on.append(f"Route 53 fails {faults['route53_error_rate'] * 100:g}% of calls")
    if faults.get("backoff_multiplier", 1.0) != 1.0:
        on.append(f"backoff x{faults['backoff_multiplier']:g}")
    return ", ".join(on) or "no faults"


def _enactor_command(name: str):
    def command(
        lock_failures: int | None = typer.Option(None, "--lock-failures", min=0, help="Lose the next N lock attempts as if another enactor held the lock."),
        delay_before_flip: float | None = typer.Option(None, "--delay-before-flip", min=0, help="Seconds to hold back every flip."),
        route53_latency_ms: int | None = typer.Option(None, "--route53-latency-ms", min=0, help="Added before every Route 53 call."),
        route53_error_rate: float | None = typer.Option(None, "--route53-error-rate", min=0, max=1, help="Share of Route 53 calls that fail."),
        backoff_multiplier: float | None = typer.Option(None, "--backoff-multiplier", min=0.001, help="Scales every backoff sleep."),
        pause: bool = typer.Option(False, "--pause", help="Stop performing requests (until --resume)."),
        resume: bool = typer.Option(False, "--resume", help="Perform requests again."),
        as_json: bool = typer.Option(False, "--json"),
        url: str | None = UrlOpt,
    ) -> None:
        if pause and resume:
            raise typer.BadParameter("give --pause or --resume, not both")
        fields = {
            "lock_failures": lock_failures,
            "delay_before_flip_s": delay_before_flip,
            "route53_latency_ms": route53_latency_ms,
            "route53_error_rate": route53_error_rate,
            "backoff_multiplier": backoff_multiplier,
        }
        fields = {k: v for k, v in fields.items() if v is not None}
        client = service_client(name, url)
        with cli_errors():
            body = client.get("/v1/chaos")
            if fields:
                body = client.post("/v1/chaos", fields)
            if pause:
                body = client.post("/v1/chaos/pause")
            if resume:
                body = client.post("/v1/chaos/resume")
        if as_json:
            typer.echo(json.dumps(body, indent=2))
        else:
            console.print(f"{name}: {_faults_line(body['faults'])}", highlight=False)

    command.__doc__ = f"Set {name}'s faults (no option: show them)."
    return command


for _name, _, _ in ENACTORS:
    chaos_app.command(_name)(_enactor_command(_name))


@chaos_app.command("planner")
def planner_burst(
    burst_every_ms: int | None = typer.Option(None, "--burst-every-ms", min=10, max=60_000, help="Publish a plan every this many ms ..."),
    burst_for_s: float | None = typer.Option(None, "--burst-for-s", min=0.001, max=600, help="... for this many seconds."),
    stop: bool = typer.Option(False, "--stop", help="Stop a running burst."),
    as_json: bool = typer.Option(False, "--json"),
    url: str | None = UrlOpt,
) -> None:
    """Start a burst of plans on the planner (no option: show the current or last burst)."""
    if (burst_every_ms is None) != (burst_for_s is None):
        raise typer.BadParameter("give both --burst-every-ms and --burst-for-s")
    client = service_client("planner", url)
    with cli_errors():
        if stop:
            body = client.delete("/v1/chaos/burst")
        elif burst_every_ms is not None:
            body = client.post("/v1/chaos/burst", {"every_ms": burst_every_ms, "for_s": burst_for_s})
        else:
            body = client.get("/v1/chaos/burst")
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    console.print(f"planner: {_burst_line(body.get('burst'))}", highlight=False)


def _burst_line(burst: dict[str, Any] | None) -> str:
    if not burst:
        return "no burst yet"
    state = "running" if burst["running"] else ("stopped" if burst["stopped"] else "done")
    versions = burst.get("versions") or []
    span = f", plans {versions[0]}..{versions[1]}" if versions else ""
    refused = sum((burst.get("refused") or {}).values())
    extra = f", {refused} refused ({', '.join(f'{k} {v}' for k, v in burst['refused'].items())})" if refused else ""
    failed = f", {burst['failed']} failed" if burst.get("failed") else ""
    return f"burst every {burst['every_ms']} ms for {burst['for_s']:g} s: {state}, {burst['published']} published{span}{extra}{failed}"


@chaos_app.command("show")
def show() -> None:
    """Every enactor's faults and the planner's burst."""
    table = Table(show_edge=False)
    table.add_column("service")
    table.add_column("chaos")
    for name, _, _ in ENACTORS:
        try:
            body = service_client(name).get("/v1/chaos")
            text = _faults_line(body["faults"]) + ("" if body.get("allow_chaos") else "  [dim](chaos off)[/dim]")
        except ServiceError as exc:
            text = f"[red]{exc}[/red]"
        table.add_row(name, text)
    try:
        table.add_row("planner", _burst_line(service_client("planner").get("/v1/chaos/burst").get("burst")))
    except ServiceError as exc:
        table.add_row("planner", f"[red]{exc}[/red]")
    console.print(table)


@chaos_app.command("clear")
def clear() -> None:
    """Every enactor's faults off (and resumed); the planner's burst stopped."""
    failed = False
    for name, _, _ in ENACTORS:
        try:
            service_client(name).delete("/v1/chaos")
            console.print(f"{name}: cleared")
        except ServiceError as exc:
            failed = True
            console.print(f"[red]{name}: {exc}[/red]", highlight=False)
    try:
        service_client("planner").delete("/v1/chaos/burst")
        console.print("planner: no burst running")
    except ServiceError as exc:
        failed = True
        console.print(f"[red]planner: {exc}[/red]", highlight=False)
    raise typer.Exit(1 if failed else 0)


def register(app: typer.Typer) -> None:
    app.add_typer(chaos_app, name="chaos")
