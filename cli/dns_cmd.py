"""`dnsctl dns`, `dnsctl prober` and `dnsctl resolve`: the data plane and the path behind an answer
(`dnsctl status` is in cli/status_cmd.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.table import Table

console = Console(soft_wrap=True)
err_console = Console(stderr=True)


class UserError(Exception):
    """Something the user can fix (a name in no hosted zone, a bad flag): one line, exit 1."""


@contextmanager
def _errors() -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except UserError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    except (BotoCoreError, ClientError) as exc:
        err_console.print(f"[red]error:[/red] Route 53: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc


def parse_host_port(value: str, default_port: int = 53) -> tuple[str, int]:
    """'127.0.0.1:8053' -> ('127.0.0.1', 8053); '[::1]:53' and a bare host work too."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.lstrip(":")
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, ""
    try:
        return host, int(port) if port else default_port
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not HOST:PORT") from None


def register(app: typer.Typer) -> None:
    @app.command("dns")
    def dns_server(
        host: str = typer.Option("127.0.0.1", help="Address to listen on (UDP and TCP)."),
        port: int = typer.Option(8053, help="Port to listen on (UDP and TCP)."),
        refresh_ms: int = typer.Option(250, help="Milliseconds between reads of Route 53 (never blocks a query)."),
        zone: list[str] = typer.Option([], "--zone", help="Serve only this zone and zones below it (repeatable; default all)."),
        cache: bool = typer.Option(False, "--cache", help="Be a caching resolver in front of --upstream instead."),
        upstream: str = typer.Option("", help="HOST:PORT of the server the cache asks (with --cache)."),
        metrics_port: int = typer.Option(0, help="Serve Prometheus metrics on this TCP port (0: off)."),
        zone_list_ms: int = typer.Option(5000, help="Milliseconds between ListHostedZones calls (new zones appear)."),
    ) -> None:
        """Answer DNS from Route 53's hosted zones exactly as Route 53 would (or cache in front of it)."""
        from services.dns.server import DnsSettings, serve
        from services.logs import configure

        if cache and not upstream:
            raise typer.BadParameter("--cache needs --upstream HOST:PORT", param_hint="--upstream")
        if refresh_ms <= 0 or zone_list_ms <= 0:
            raise typer.BadParameter("must be positive", param_hint="--refresh-ms/--zone-list-ms")
        configure(process="dns-cache" if cache else "dns")
        serve(
            DnsSettings(
                host=host,
                port=port,
                refresh_s=refresh_ms / 1000,
                list_interval_s=zone_list_ms / 1000,
                zones=tuple(zone),
                cache=cache,
                upstream=parse_host_port(upstream) if upstream else None,
                metrics_port=metrics_port,
            )
        )

    @app.command("prober")
    def prober(
        host: str = typer.Option("127.0.0.1", help="Address of the HTTP API."),
        port: int = typer.Option(8090, help="Port of the HTTP API (/healthz, /metrics, /v1/alarms)."),
        dns: str = typer.Option("127.0.0.1:8053", "--dns", help="HOST:PORT of the DNS server to probe."),
        planner: str = typer.Option("", help="Planner base URL (newest plan, for PlanLagHigh); empty: none."),
        enactor: list[str] = typer.Option([], "--enactor", help="Enactor base URL (repeatable; for EnactorStuck)."),
        interval_ms: int = typer.Option(200, help="Milliseconds between probe rounds."),
        route53_refresh_ms: int = typer.Option(1000, help="Milliseconds between reads of Route 53."),
        zone: list[str] = typer.Option([], "--zone", help="Watch only this zone and zones below it (repeatable)."),
        stuck_after: int = typer.Option(3, help="EnactorStuck after this many failed flips in a row."),
        empty_after: int = typer.Option(2, help="EndpointEmpty after this many empty answers in a row."),
        clear_after: int = typer.Option(5, help="EndpointEmpty clears after this many full answers in a row."),
        lag_versions: int = typer.Option(5, help="PlanLagHigh when this many versions behind the newest plan..."),
        lag_seconds: float = typer.Option(60.0, help="...or behind at all for this many seconds."),
    ) -> None:
        """Probe every endpoint over DNS, export metrics, and raise ranked alarms (cause first)."""
        from services.logs import configure
        from services.prober.app import create_app
        from services.prober.loop import ProberSettings
        from services.prober.rules import RuleSettings
        from services.web import serve

        for name, value in (("--interval-ms", interval_ms), ("--route53-refresh-ms", route53_refresh_ms),
                            ("--stuck-after", stuck_after), ("--empty-after", empty_after),
                            ("--clear-after", clear_after), ("--lag-versions", lag_versions)):
            if value <= 0:
                raise typer.BadParameter("must be positive", param_hint=name)
        configure(process="prober")
        settings = ProberSettings(
            host=host,
            port=port,
            dns=parse_host_port(dns),
            planner_url=planner or None,
            enactor_urls=tuple(enactor),
            interval_s=interval_ms / 1000,
            route53_refresh_s=route53_refresh_ms / 1000,
            zones=tuple(zone),
            rules=RuleSettings(stuck_after, empty_after, clear_after, lag_versions, lag_seconds),
        )
        serve(create_app(settings), host, port)

    @app.command("resolve")
    def resolve_cmd(
        name: str = typer.Argument(..., help="The DNS name, e.g. dynamodb.us-east-1.api.aws"),
        rtype: str = typer.Option("A", "--type", help="A or AAAA (any record type works)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
        dns: str = typer.Option("", "--dns", help="Also ask this DNS server (HOST:PORT) what it serves now."),
    ) -> None:
        """The answer Route 53 gives for NAME and the path behind it: root alias -> tree -> plan -> LBs.

        Read from Route 53 alone (the records and the tree's metadata). Exit status: 0 with
        addresses, 2 with zero addresses (a dangling root, NXDOMAIN), 1 on errors.
        """
        from services.aws_clients import route53_client
        from services.dns import resolve_report

        server = parse_host_port(dns) if dns else None
        with _errors():
            try:
                report = resolve_report.build(route53_client(), name, rtype.upper(), server)
            except resolve_report.NoHostedZone as exc:
                raise UserError(str(exc)) from exc
        if as_json:
            typer.echo(json.dumps(report, indent=2))
        else:
            _render_resolve(report)
        raise typer.Exit(0 if report["answer"]["addresses"] else 2)


# -- rendering ----------------------------------------------------------------------------------


def _when(epoch: int | None, now: float) -> str:
    if epoch is None:
        return "-"
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")
    left = epoch - now
    return f"{stamp} (in {left:.0f}s)" if left > 0 else f"{stamp} (expired)"


def _render_resolve(report: dict) -> None:
    import time

    ans = report["answer"]
    n = len(ans["addresses"])
    head = f"[bold]{report['name']}[/bold] {report['type']}  (hosted zone {report['zone']['name']} {report['zone']['id']})"
    console.print(head, highlight=False)
    noun = ("address", "addresses") if report["type"] in ("A", "AAAA") else ("record", "records")
    if n:
        console.print(f"answer: {ans['rcode']}, {n} {noun[n != 1]}, TTL {ans['ttl']}: "
                      + " ".join(ans["addresses"]), highlight=False)
    else:
        soa = next((a for a in ans["authority"] if a["type"] == "SOA"), None)
        why = " - the root DANGLES" if ans["dangling"] else ""
        neg = f", SOA in authority (negative TTL {soa['ttl']}s)" if soa else ""
        console.print(f"answer: [red]{ans['rcode']}, 0 {noun[1]}{why}[/red]{neg}", highlight=False)
    picks = [p["set_identifier"] for p in ans["path"] if p["kind"] == "weighted"]
    if picks:
        console.print(f"this query's weighted choice: {' -> '.join(picks)}", highlight=False)
    ep = report["endpoint"]
    if ep is None:
        for p in ans["path"]:
            if p["kind"] in ("alias", "cname", "missing"):
                tail = " (MISSING)" if p["kind"] == "missing" else ""
                console.print(f"  {p['kind']}: {p['name']} -> {p['target']}{tail}", highlight=False)
        return
    console.print("path (from Route 53):")
    for root in ep["root"]:
        if root["target"] is None:
            console.print(f"  root {root['type']}: not an alias: {' '.join(root['values'])}", highlight=False)
        elif root["exists"]:
            console.print(f"  root {root['type']} alias -> {root['tree_id'] or root['target']}", highlight=False)
        else:
            console.print(f"  root {root['type']} alias -> [red]{root['tree_id'] or root['target']} MISSING: no such "
                          f"record in Route 53 (the root dangles; DNS answers NOERROR with 0 addresses)[/red]", highlight=False)
    if not ep["root"]:
        console.print("  no root record (no plan applied yet)")
    tree = ep["active_tree"]
    if tree is not None:
        plan = tree["plan_version"]
        created = f", created {tree['created_at']}" if tree.get("created_at") else ""
        if not tree["exists"]:
            known = f"its metadata still says plan {plan}" if plan is not None else "its metadata is gone too"
            console.print(f"  tree {tree['tree_id']}: [red]missing[/red] ({known})", highlight=False)
        else:
            whole = "" if tree["complete"] else " [yellow](incomplete: metadata or a member's leaf is missing)[/yellow]"
            console.print(f"  tree {tree['tree_id']} -> plan {plan if plan is not None else '?'}{created}{whole}", highlight=False)
            table = Table(show_edge=False, pad_edge=False, box=None)
            for col in ("lb", "az", "weight", "share", "leaf", "addresses"):
                table.add_column(col)
            for lb in tree["load_balancers"]:
                table.add_row(lb["lb_id"], lb["az"], str(lb["weight"]) if lb["weight"] is not None else "-",
                              f"{lb['share'] * 100:.1f}%", lb["leaf"].split(".")[0] + (" MISSING" if lb["missing"] else ""),
                              ", ".join(lb["addresses"]))
            console.print(table)
    rollback = ep["rollback_tree"]
    if rollback is not None:
        state = "" if rollback["exists"] else " [red](missing)[/red]"
        console.print(f"  rollback -> {rollback['tree_id']} (plan {rollback['plan_version']}){state}", highlight=False)
    now = time.time()
    lock = ep["lock"]
    if lock and lock["expires"] is not None and lock["expires"] <= now:
        console.print(f"  lock: free (last: {lock['holder']}, released or run out at {_when(lock['expires'], now).split()[0]})", highlight=False)
    else:
        console.print(f"  lock: {lock['holder']} until {_when(lock['expires'], now)}" if lock else "  lock: none", highlight=False)
    applied = ep["applied"]
    if applied:
        console.print(f"  applied record: plan {applied['version']} tree {applied['tree_id']}", highlight=False)
    plane = report.get("data_plane")
    if plane:
        if plane.get("error"):
            console.print(f"data plane {plane['server']}: [red]{plane['error']}[/red]", highlight=False)
        else:
            console.print(f"data plane {plane['server']} now: {plane['rcode']}, {len(plane['addresses'])} addresses "
                          + " ".join(plane["addresses"]), highlight=False)
