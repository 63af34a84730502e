"""The port flags `dnsctl up` and `dnsctl race` share: the same names and meaning for both, and
one parser into services/stack.py's Ports (0 picks a free port)."""

from __future__ import annotations

import typer

from services.stack import Ports, default_cell_ports

_HELP = {
    "emulator": "Port of the Route 53 + S3 emulator",
    "planner": "Port of the planner's REST API",
    "enactors": "Ports of enactor-a, -b and -c (comma-separated)",
    "dns": "UDP and TCP port of the DNS data plane",
    "prober": "Port of the prober's HTTP API",
    "console": "Port of the live web console",
}


def port_option(service: str, default: int | str):
    """A typer option for one service's port; 0 (or 0,0,0 for the enactors) picks a free port."""
    return typer.Option(default, help=f"{_HELP[service]} (0: a free port).")


def ports_from_flags(host: str, emulator: int, planner: int, enactors: str, dns: int, prober: int, console: int = 8088) -> Ports:
    """Validated Ports; every 0 becomes a port free right now."""
    try:
        enactor_ports = tuple(int(p) for p in enactors.split(","))
    except ValueError:
        raise typer.BadParameter("give three port numbers, e.g. 8081,8082,8083", param_hint="--enactor-ports") from None
    if len(enactor_ports) != 3:
        raise typer.BadParameter("give three ports, for enactor-a, -b and -c", param_hint="--enactor-ports")
    for hint, port in (("--emulator-port", emulator), ("--planner-port", planner), ("--dns-port", dns),
                       ("--prober-port", prober), ("--console-port", console), *(("--enactor-ports", p) for p in enactor_ports)):
        if not 0 <= port <= 65535:
            raise typer.BadParameter(f"{port} is not a port (0-65535)", param_hint=hint)

    # Imported here, not at the top: `dnsctl --help` need not import the supervisor.
    from services.supervisor import free_port

    def pick(port: int, protocol: str = "tcp") -> int:
        return port or free_port(host, protocol)

    return Ports(
        emulator=pick(emulator),
        planner=pick(planner),
        enactors=tuple(pick(p) for p in enactor_ports),
        dns=pick(dns, "udp+tcp"),
        prober=pick(prober),
        console=pick(console),
    )


def cell_ports_from_flags(host: str, count: int, base: int) -> tuple[tuple[int, int, int, int], ...]:
    """(planner, enactor-a, -b, -c) ports of cells 1..count from `base` (0: every one a free port)."""
    if base == 0:
        from services.supervisor import free_port  # lazily, as in ports_from_flags

        return tuple(tuple(free_port(host) for _ in range(4)) for _ in range(count))  # type: ignore[misc]
    if not 1 <= base <= 65535 - 10 * count:
        raise typer.BadParameter(f"{base} leaves no room for {count} cells below port 65535", param_hint="--cell-port-base")
    return default_cell_ports(count, base)
