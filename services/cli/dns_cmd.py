"""`dnsctl dns`, `dnsctl prober`, `dnsctl resolve` and `dnsctl status`: the data plane and the
operators' view of it."""

from __future__ import annotations

import typer


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
        import uvicorn

        from services.logs import configure
        from services.prober.app import create_app
        from services.prober.loop import ProberSettings
        from services.prober.rules import RuleSettings

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
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)
