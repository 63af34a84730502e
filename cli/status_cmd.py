"""`dnsctl status`: one view of one stack. Per endpoint the active plan, tree, rollback, lock,
newest plan, lag and what DNS answers now; per enactor its state; the prober's alarms.

Every part comes from the stack the state dir describes (services/stack_file.py), unless a flag
or an explicit setting says otherwise; when parts disagree (Route 53 of one stack, a planner of
another, a stack description whose `dnsctl up` is gone) the view says so above the tables
instead of mixing them silently. Two layouts: a wide table, and a compact one for terminals
narrower than WIDE_COLUMNS that fits 80x24 (the live view of `dnsctl up` uses the same renderer).

Exit status: 0 when Route 53 could be read, 1 when it could not, 2 with no AWS settings at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

console = Console(soft_wrap=True)
err_console = Console(stderr=True)
WIDE_COLUMNS = 140  # the wide endpoint table needs about this many columns
MAX_ALARMS_COMPACT = 4


def short_tree(tree_id: str) -> str:
    """t-<32 hex> -> t-<8 hex>…: enough to tell trees apart in a table (--json has the full id)."""
    return tree_id[:10] + "…" if tree_id.startswith("t-") and len(tree_id) > 12 else tree_id


def lock_text(holder: str | None, expires: float | None, now: float) -> str:
    """"enactor-a, 3s left" while held; "free (last: enactor-a)" once released or run out (an
    enactor releases by writing the lock back already expired, so the two look the same)."""
    if not holder:
        return "free"
    left = (expires or 0) - now
    return f"{holder}, {left:.0f}s left" if left > 0 else f"free (last: {holder})"


def _lag_text(lag: int | None) -> str:
    return "-" if lag is None else (f"[red]{lag}[/red]" if lag >= 5 else str(lag))


def _dns_text(row: dict) -> str:
    if "accounts" in row:  # the accounts' zone (services/prober/cell_groups.py): its names' answers, not its apex's
        accounts = row["accounts"]
        if accounts is None:
            return "accounts ?"
        lost = f"[red]{accounts['lost']} lost[/red]" if accounts["lost"] else "0 lost"
        unanswered = f" / {accounts['unanswered']} no reply" if accounts.get("unanswered") else ""
        return f"accounts {accounts['answering']} answering / {lost}{unanswered}"
    parts = []
    for rtype, count in row["addresses"].items():
        text = f"{rtype} {'?' if count is None else count}"
        parts.append(f"[red]{text}[/red]" if count == 0 else text)
    return " / ".join(parts)


def _active_text(row: dict, short: bool) -> str:
    if row["dangling"]:
        missing = ", ".join(short_tree(t) for t in dict.fromkeys(row["dangling"]))
        return "[red]DANGLING[/red]" if short else f"[red]DANGLING: {missing} missing[/red]"
    if not row["tree"]:
        return "-"
    version = row["active_version"] if row["active_version"] is not None else "?"
    return f"plan {version}" if short else f"plan {version} ({short_tree(row['tree'])})"


def _title(report: dict) -> str:
    planner = report["planner"]
    what = f"endpoints of {report['group']}" if report.get("group") else "endpoints"  # with cells: one group per system
    if not planner["reachable"]:
        return f"{what}  (planner unreachable)"
    newest = planner["newest_version"]
    noun = report.get("versions_of", "plan")  # the cell map's group counts maps, not plans
    return f"{what}  (newest {noun} {newest if newest is not None else '-'}" + (", [red]FROZEN[/red])" if planner["frozen"] else ")")


def status_tables(report: dict, width: int | None = None) -> Group:
    """The whole view; compact (80 columns) when `width` is below WIDE_COLUMNS."""
    compact = width is not None and width < WIDE_COLUMNS
    parts: list[Any] = [f"[yellow]warning:[/yellow] {w}" for w in report.get("warnings", [])]
    if "cells" in report:  # grouped by services/prober/cell_groups.py: one table per management system
        from cli import cells_view

        systems = cells_view.groups(report)
    else:
        systems = [report]
    for part in systems:
        parts += _endpoints_compact(part) if compact else [_endpoints_wide(part)]
    if report["route53_error"]:
        parts.append(f"[red]Route 53 unreachable: {report['route53_error']}[/red]")
    parts.append(_enactors(report, compact))
    parts += _alarms(report, compact, width or 200)
    if report.get("via"):
        via = report["via"]
        where = "the console" if compact else f"the console at {via['console']}"
        line = Text(f"via {where} (Route 53 read {via['route53_age_s']:.1f} s ago; --direct reads it from here)", style="dim")
        if compact:
            line.truncate(width or 80, overflow="ellipsis")
        parts.append(line)
    return Group(*parts)


def _endpoints_wide(report: dict) -> Table:
    now = report["at"]
    newest = report["planner"]["newest_version"] if report["planner"]["reachable"] else None
    eps = Table(title=_title(report), title_justify="left")
    eps.add_column("endpoint", no_wrap=True)
    for col in ("active (tree)", "rollback", "lock", "newest", "lag", "DNS now"):
        eps.add_column(col)
    for row in report["endpoints"]:
        rollback = f"plan {row['rollback_version']} ({short_tree(row['rollback_tree'])})" if row["rollback_tree"] else "-"
        eps.add_row(row["endpoint"], _active_text(row, short=False), rollback, lock_text(row["lock_holder"], row["lock_expires"], now),
                    str(newest if newest is not None else "-"), _lag_text(row["lag"]), _dns_text(row))
    return eps


def _endpoints_compact(report: dict) -> list[Any]:
    """Two lines per endpoint: its name, then plan, rollback, lock, lag and DNS in fixed columns."""
    now = report["at"]
    lines: list[Any] = [_title(report)]
    if not report["endpoints"]:
        lines.append("  (no endpoint zones in Route 53)")
    for row in report["endpoints"]:
        rollback = f"rb {row['rollback_version']}" if row["rollback_tree"] else "rb -"
        lock = lock_text(row["lock_holder"], row["lock_expires"], now)
        lines.append(Text(row["endpoint"], style="bold", no_wrap=True, overflow="ellipsis"))
        active = Text.from_markup(_active_text(row, short=True))
        active.pad_right(max(0, 9 - active.cell_len))
        lines.append(Text.assemble("  ", active, f" {rollback:<6} lock {lock:<23} lag ", Text.from_markup(_lag_text(row["lag"])),
                                   "  DNS ", Text.from_markup(_dns_text(row)), no_wrap=True, overflow="ellipsis"))
    return lines


def _enactors(report: dict, compact: bool) -> Table:
    ens = Table(title="enactors", title_justify="left", box=None if compact else box.HEAVY_HEAD, pad_edge=not compact)
    per_col = "applied (per endpoint)" if compact else "per endpoint: applied / failed flips"
    for col in ("enactor", "state", "mode", per_col):
        ens.add_column(col, no_wrap=compact, overflow="ellipsis")
    for e in report["enactors"]:
        if not e["reachable"]:
            ens.add_row(e["enactor"], "[red]unreachable[/red]", "-", e["url"])
            continue
        state = e["state"] or "-"
        if state in ("stuck", "frozen", "backing_off"):
            state = f"[{'red' if state == 'stuck' else 'yellow'}]{state}[/]"
        if compact:
            per = " ".join(
                f"v{x['applied_version'] if x['applied_version'] is not None else '-'}"
                + (f"[red]✗{x['flip_failures']}[/red]" if x["flip_failures"] else "")
                for x in e["endpoints"]
            )
        else:
            per = "; ".join(
                f"{x['endpoint']}: v{x['applied_version'] if x['applied_version'] is not None else '-'}"
                + (f" {x['state']}" if x["state"] else "") + (f" [red]{x['flip_failures']} failed[/red]" if x["flip_failures"] else "")
                for x in e["endpoints"]
            )
        ens.add_row(e["enactor"], state, e["mode"] or "-", per or "-")
    return ens


def _alarms(report: dict, compact: bool, width: int) -> list[Any]:
    alarms = report["alarms"]
    if alarms is None:
        return []
    if not alarms:
        return ["[green]no active alarms[/green]"]
    shown = alarms[:MAX_ALARMS_COMPACT] if compact else alarms
    out: list[Any] = ["[bold red]alarms (cause first):[/bold red]"]
    for a in shown:
        subject = a.get("endpoint") or a.get("enactor")
        cause = f"  [dim](caused by {a['caused_by']})[/dim]" if a.get("caused_by") else ""
        line = Text.from_markup(f"  {a['rank']}. {a['alarm']} {subject}: {a['detail']}{cause}")
        if compact:
            line.truncate(width, overflow="ellipsis")
        out.append(line)
    if len(shown) < len(alarms):
        out.append(f"  ... and {len(alarms) - len(shown)} more (dnsctl status --json)")
    return out


# -- where the parts come from --------------------------------------------------------------------


# An older console view (a console stuck or far behind) is read directly instead. The console reads
# Route 53 within one call per endpoint per second (a round is the zone listing and every zone, a
# second or two) and the other sources once a second, each read taking a moment of its own.
CONSOLE_MAX_AGE_S = 5.0
_CONSOLE_ONLY = ("console", "published_at", "snapshot_at", "readings_at")


def console_report(url: str, with_cells: bool = False, timeout_s: float = 2.0) -> dict | None:
    """The view the stack's console last published (GET /api/state: the same report, composed by
    services/prober/overview.py there, grouped by services/prober/cell_groups.py when the stack
    has cells), or None when it is not there, not whole, too old, or not grouped for a stack with
    cells (a console started without its cells' flags): then status reads every source itself.
    Route 53 and the other sources each read within CONSOLE_MAX_AGE_S; the report says how long
    ago under "via"."""
    import time

    from cli.client import ServiceError, service_client

    try:
        state = service_client("console", url, timeout_s).get("/api/state")
    except ServiceError:
        return None
    now = time.time()
    if not isinstance(state, dict) or state.get("route53_error") is not None or not isinstance(state.get("endpoints"), list):
        return None
    ages = {part: now - state[part] if isinstance(state.get(part), (int, float)) else None for part in ("snapshot_at", "readings_at")}
    if any(age is None or age > CONSOLE_MAX_AGE_S for age in ages.values()) or (with_cells and "cells" not in state):
        return None
    report = {k: v for k, v in state.items() if k not in _CONSOLE_ONLY}
    for row in report["endpoints"]:
        row.pop("tree_levels", None)
    report["via"] = {"console": url, "route53_age_s": round(max(0.0, ages["snapshot_at"]), 2),
                     "readings_age_s": round(max(0.0, ages["readings_at"]), 2)}
    return report




def disagreements(report: dict, stack, aws_source, urls: dict[str, str]) -> list[str]:
    """What makes this view something other than one stack, in words."""
    warnings: list[str] = []
    if stack is not None and not stack.running:
        warnings.append(f"the stack described in {stack.path} is gone (pid {stack.data.get('supervisor_pid')} "
                        "is not running); its addresses may belong to nothing or to another stack")
    if stack is not None and aws_source.kind == "explicit" and stack.emulator_url \
            and os.environ.get("AWS_ENDPOINT_URL") != stack.emulator_url:
        warnings.append(f"Route 53 comes {aws_source.detail}, not from the stack in {stack.state_dir} "
                        f"(its emulator is {stack.emulator_url}): unset AWS_ENDPOINT_URL/AWS_PROFILE to see that stack alone")
    if stack is not None:
        for service, url in urls.items():
            theirs = stack.url(service)
            if theirs and url.rstrip("/") != theirs.rstrip("/"):
                warnings.append(f"{service} is {url}, not the stack's {theirs}")
    ahead = [(r["endpoint"], r["ahead_of_planner"]) for r in report["endpoints"] if r.get("ahead_of_planner", 0) > 2]
    if ahead:
        names = ", ".join(f"{ep} (+{n})" for ep, n in ahead)
        warnings.append(f"Route 53 serves plans newer than the planner's newest on {names}: the planner and Route 53 "
                        "are probably different stacks")
    served = {r["endpoint"] for r in report["endpoints"]}
    known = {x["endpoint"].rstrip(".") for e in report["enactors"] if e["reachable"] for x in e["endpoints"]}
    if served and known and not served & known:
        warnings.append("the enactors work on endpoints Route 53 has no zone for: they belong to another stack")
    return warnings


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status_cmd(
        watch: bool = typer.Option(False, "--watch", help="Refresh until Ctrl-C."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON (one document per refresh with --watch)."),
        interval: float = typer.Option(1.0, help="Seconds between refreshes with --watch."),
        zone: list[str] = typer.Option([], "--zone", help="Only these zones and zones below them (repeatable)."),
        planner: str = typer.Option("", help="Planner URL (default: the stack's, or DNSCTL_PLANNER_URL)."),
        enactor: list[str] = typer.Option([], "--enactor", help="Enactor URLs (default: the stack's three enactors)."),
        dns: str = typer.Option("", "--dns", help="DNS server HOST:PORT (default: the stack's DNS server)."),
        prober: str = typer.Option("", help="Prober URL for active alarms (default: the stack's, or DNSCTL_PROBER_URL)."),
        state_dir: Path = typer.Option(None, "--state-dir", help="The stack's state dir (default DNSCTL_STATE_DIR or .dnsctl).", show_default=False),
        direct: bool = typer.Option(False, "--direct", help="Read Route 53 and every service from here, not through the stack's console."),
    ) -> None:
        """One stack at a glance: endpoints (active plan, tree, rollback, lock, newest, lag, DNS now), enactors, alarms."""
        import time

        from cli.client import base_url, env_var
        from services import stack_file
        from services.stack import ENACTORS

        if interval <= 0:
            raise typer.BadParameter("must be positive", param_hint="--interval")
        if state_dir is not None:
            stack_file.use_state_dir(state_dir)
        aws_source = stack_file.resolve_aws()
        stack = aws_source.stack
        # Through the stack's console when nothing asks for other sources than the stack's own: it
        # has read Route 53 and every service within the last second or two, so this process needs
        # neither botocore nor dnspython and adds no Route 53 call to the account's budget.
        chosen = planner or prober or dns or enactor or zone or any(
            os.environ.get(env_var(n)) for n in ("planner", "prober", *(e for e, _, _ in ENACTORS)))
        # A stack with cells too: the console groups its view by cell as a direct read does
        # (services/prober/cell_groups.py, the one producer of that shape).
        cell_enactors, cells = (), None
        if stack is not None:
            from cli.cells_view import cell_sources

            cell_enactors, cells = cell_sources(stack)
        console_url = stack.url("console") if stack and stack.running and aws_source.kind == "stack" and not chosen and not direct else None
        direct_view: list = []  # (sources, Route 53 client), made on first need

        def direct_sources():
            if not direct_view:
                from services.aws_clients import route53_client

                client = route53_client()  # no stack and no AWS settings: AwsNotConfigured, said by cli.main
                from cli.dns_cmd import parse_host_port
                from services.prober.overview import Sources
                from services.stack import Ports

                enactors = (
                    tuple((f"enactor-{i}", u) for i, u in enumerate(enactor, 1))
                    if enactor
                    else tuple((n, base_url(n)) for n, _, _ in ENACTORS) + cell_enactors
                )
                dns_server = parse_host_port(dns) if dns else (stack.dns if stack and stack.dns else ("127.0.0.1", Ports().dns))
                sources = Sources(
                    planner_url=base_url("planner", planner or None),
                    enactor_urls=enactors,
                    dns=dns_server,
                    prober_url=base_url("prober", prober or None),
                    zones=tuple(zone),
                )
                direct_view[:] = [sources, client]
            return direct_view

        def take() -> dict:
            report = console_report(console_url, with_cells=bool(cells)) if console_url else None
            if report is not None:
                urls = {"planner": report["planner"]["url"], **{e["enactor"]: e["url"] for e in report["enactors"]}}
            else:
                sources, client = direct_sources()  # first: without AWS settings, say so before importing the view's readers
                from services.prober.overview import gather

                urls = {"planner": sources.planner_url, "prober": sources.prober_url or "", **dict(sources.enactor_urls)}
                report = gather(sources, client)
                if cells:
                    from cli.cells_view import grouped

                    report = grouped(report, cells)
                report["via"] = None
            report["warnings"] = disagreements(report, stack, aws_source, urls)
            report["stack"] = {"state_dir": str(stack.state_dir), "run_id": stack.run_id, "mode": stack.mode} if stack else None
            return report

        if not watch:
            report = take()
            if as_json:
                typer.echo(json.dumps(report, indent=2))
            else:
                console.print(status_tables(report, console.width))
            raise typer.Exit(1 if report["route53_error"] else 0)
        try:
            if as_json:
                while True:
                    typer.echo(json.dumps(take()))
                    time.sleep(interval)
            else:
                from rich.live import Live

                with Live(status_tables(take(), console.width), console=console, auto_refresh=False) as live:
                    while True:
                        time.sleep(interval)
                        live.update(status_tables(take(), console.width), refresh=True)
        except KeyboardInterrupt:
            pass
