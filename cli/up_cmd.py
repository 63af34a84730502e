"""`dnsctl up` and `dnsctl down`: the whole stack as local processes, the way `make demo` runs it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from cli.port_flags import cell_ports_from_flags, port_option, ports_from_flags
from services import auth, stack_file
from services.cells.naming import cell_names
from services.stack import (
    CELL_PORT_BASE,
    DEFAULT_BUCKET,
    DEFAULT_REGION,
    EMULATOR_CREDENTIALS,
    Ports,
    services,
)
from services.stack_file import STATE_DIR_ENV, use_state_dir

if TYPE_CHECKING:  # the supervisor (and its structlog) is imported by the commands that run it, not by `dnsctl --help`
    from services.supervisor import Supervisor

console = Console()
err_console = Console(stderr=True)


def up(
    host: str = typer.Option("127.0.0.1", help="Address every service binds to."),
    emulator_port: int = port_option("emulator", 4566),
    planner_port: int = port_option("planner", 8080),
    enactor_ports: str = port_option("enactors", "8081,8082,8083"),
    dns_port: int = port_option("dns", 8053),
    prober_port: int = port_option("prober", 8090),
    console_port: int = port_option("console", 8088),
    version_guard: bool = typer.Option(True, "--version-guard/--no-version-guard", help="Run the enactors guarded (default) or in legacy mode."),
    plan_interval: float = typer.Option(5.0, help="Seconds between scheduled plans."),
    allow_chaos: bool = typer.Option(True, "--allow-chaos/--no-chaos", help="Enable the enactors' chaos routes (for the race lab)."),
    emulator: bool = typer.Option(True, "--emulator/--no-emulator", help="Start the local emulator; --no-emulator uses boto3's own AWS configuration (and creates the hosted zones in that account)."),
    state_dir: Path = typer.Option(None, "--state-dir", envvar=STATE_DIR_ENV, help="Token, logs and the stack's description (default .dnsctl).", show_default=False),
    duration: float = typer.Option(0.0, help="Stop by itself after this many seconds (0: run until Ctrl-C)."),
    live: bool = typer.Option(True, "--live/--no-live", help="Show the compact live view."),
    fleet_file: Path | None = typer.Option(None, help="Fleet file (.toml, .yaml) for the planner; default: the demo fleet."),
    lbs: int | None = typer.Option(None, help="Have the planner generate a fleet of N load balancers (planner.fleet.generate_fleet says the bounds)."),
    fresh: bool = typer.Option(False, "--fresh", help="Start the emulator empty (its journaled state in STATE_DIR/emulator is deleted)."),
    cells: int = typer.Option(0, "--cells", min=0, max=99, help="Also start N cells beside the regional system, each its own planner and enactor trio (cell-N-enactor-a ...)."),
    accounts: int = typer.Option(0, "--accounts", min=0, max=9_996, help="Also run the cell map with N accounts (<account>.ddb.us-east-1.api.aws CNAME their cell's name; every (cells+1)-th one stays on the legacy name), with its own planner and enactors."),
    cell_port_base: int = typer.Option(CELL_PORT_BASE, help="Cell k's planner port is BASE + 10*(k-1), its enactors' the next three (0: free ports)."),
) -> None:
    """Start the emulator, planner, three enactors, DNS server, prober and web console; Ctrl-C stops them all."""
    from services.supervisor import PortInUse, ServiceFailed, Supervisor, check_ports, free_port

    ports = ports_from_flags(host, emulator_port, planner_port, enactor_ports, dns_port, prober_port, console_port)
    ports = replace(ports, cells=cell_ports_from_flags(host, cells, cell_port_base))
    if cell_port_base == 0:  # free ports asked for: the cell map's too
        ports = replace(ports, cellmap=cell_ports_from_flags(host, 1, 0)[0], resolver=free_port(host, "udp+tcp"))
    state_dir = use_state_dir(state_dir)
    planner_args = _fleet_args(fleet_file, lbs)
    auth.ensure_token()
    emulator_data = state_dir / "emulator"  # the emulator's journal and state: they survive kill -9 and restarts
    if fresh:
        shutil.rmtree(emulator_data, ignore_errors=True)
    # The planner signs every plan with this pair's private key; enactors apply only what verifies.
    from services.plan.signing import generate_key_pair

    plan_keys = generate_key_pair(state_dir)
    specs = services(
        ports, host=host, version_guard=version_guard, plan_interval_s=plan_interval, allow_chaos=allow_chaos,
        plan_keys=plan_keys, planner_args=planner_args, emulator_data_dir=str(emulator_data), accounts=accounts,
    )
    if not emulator:
        specs = [s for s in specs if s.name != "emulator"]
        for s in specs:
            s.env.pop("AWS_ENDPOINT_URL", None)
        # Without the emulator the zones go to the account boto3 is configured for: that is asked for.
        specs = [replace(s, args=(*s.args, "--aws")) if s.name == "zones" or s.name.endswith("-zones") else s for s in specs]
    available = set(_registered_commands())
    specs = [s for s in specs if s.args[0] in available]
    try:
        check_ports(specs, host)
    except PortInUse as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc

    base_env = {STATE_DIR_ENV: str(state_dir)}
    aws_env: dict[str, str] = {}
    if emulator:
        # The emulator accepts any credentials; real ones must never be sent to it.
        aws_env = {**EMULATOR_CREDENTIALS, "AWS_ENDPOINT_URL": f"http://{host}:{ports.emulator}"}
        base_env.update(aws_env)
        os.environ.pop("AWS_PROFILE", None)
    # This process is a client of the stack too (zone bootstrap, live view): same settings as the children.
    os.environ.update(base_env)
    sup = Supervisor(host=host, state_dir=state_dir, base_env=base_env)
    sup.description = describe(ports, version_guard=version_guard, aws_env=aws_env)
    # The supervisor's own events (service_exited, service_restarted) join the stack's logs.
    sup.log_dir.mkdir(parents=True, exist_ok=True)
    from services.logs import RotatingStream, configure

    configure(process="supervisor", stream=RotatingStream(str(sup.log_dir / "supervisor.log")))  # type: ignore[arg-type]

    stopping = {"now": False}

    def _on_signal(signum, _frame):
        stopping["now"] = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    # A closed terminal sends SIGHUP: its default would kill this process alone and orphan every
    # child (each runs in its own process group), so it stops the stack as Ctrl-C does.
    signal.signal(signal.SIGHUP, _on_signal)
    try:
        start_with_progress(sup, specs, console, should_stop=lambda: stopping["now"])
        if not stopping["now"]:
            console.print(f"run {sup.run_id}: API token in {auth.token_path()}; logs in {sup.log_dir}. Ctrl-C stops everything.")
            for line in _other_shells(state_dir):
                console.print(line, highlight=False, markup=False, soft_wrap=True)
            _watch(sup, host, ports, duration, live, stopping)
    except ServiceFailed as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    finally:
        sup.stop_all(on_stop=lambda name: console.print(f"[yellow]stopped[/yellow] {name}"))


def _fleet_args(fleet_file: Path | None, lbs: int | None) -> tuple[str, ...]:
    """The planner's fleet flags, checked before anything starts: a bad fleet starts nothing."""
    from planner.fleet import FleetError, generate_fleet, load_fleet_file

    if fleet_file is not None and lbs is not None:
        raise typer.BadParameter("give either --fleet-file or --lbs, not both", param_hint="--lbs")
    try:
        if fleet_file is not None:
            load_fleet_file(fleet_file)
            return ("--fleet-file", str(fleet_file.resolve()))
        if lbs is not None:
            generate_fleet(lbs)
            return ("--lbs", str(lbs))
    except FleetError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    return ()


def describe(ports: Ports, *, version_guard: bool, aws_env: dict[str, str]) -> dict:
    """The part of the stack's description `dnsctl up` knows beyond its children (services/stack_file.py)."""
    return {
        "mode": "guarded" if version_guard else "legacy",
        "ports": {"emulator": ports.emulator, "planner": ports.planner, "enactors": list(ports.enactors),
                  "dns": ports.dns, "prober": ports.prober},
        "cells": {cell: {"planner": p[0], "enactors": list(p[1:])} for cell, p in zip(cell_names(len(ports.cells)), ports.cells, strict=True)},
        "aws_env": aws_env,
        "settings": {"DNSCTL_BUCKET": DEFAULT_BUCKET, "DNSCTL_REGION": DEFAULT_REGION},
    }


def start_with_progress(sup: Supervisor, specs: list, out: Console, should_stop=lambda: False) -> None:
    """Start every service (in parallel where depends_on allows) and show what is up while the rest start."""
    from services.supervisor import tail

    host = sup.host
    waiting = [s.name for s in specs]

    def started(child) -> None:
        spec = child.spec
        waiting.remove(spec.name)
        if spec.oneshot:
            out.print(f"[green]done[/green] {spec.name:<10} {_summary(tail(child.log_path, 1))}")
        else:
            where = f"udp+tcp {host}:{spec.port}" if spec.protocol != "tcp" else child.url(host)
            # The run's log folder is printed once at the end; a narrow terminal gets one line per service.
            log = f"  (log {child.log_path})" if out.width >= 120 else ""
            out.print(f"[green]up[/green] {spec.name:<10} {where}{log}", highlight=False)
        status.update(f"starting {', '.join(waiting)} ...")

    with out.status(f"starting {', '.join(waiting)} ...") as status:
        sup.start_all(specs, on_started=started, should_stop=should_stop)


def down(
    state_dir: Path = typer.Option(None, "--state-dir", envvar=STATE_DIR_ENV, help="The stack's state dir (default .dnsctl).", show_default=False),
) -> None:
    """Stop a stack started by `dnsctl up` in another terminal."""
    stack = stack_file.read(state_dir)
    if stack is None:
        console.print(f"no running stack found (no {stack_file.state_dir(state_dir) / stack_file.FILE_NAME})")
        raise typer.Exit(0)
    try:
        os.kill(int(stack.data["supervisor_pid"]), signal.SIGTERM)
        console.print(f"asked dnsctl up (pid {stack.data['supervisor_pid']}) to stop")
    except ProcessLookupError:
        # The supervisor is gone; stop its children directly.
        for name, svc in stack.services.items():
            try:
                os.killpg(int(svc["pid"]), signal.SIGTERM)
                console.print(f"stopped {name}")
            except ProcessLookupError:
                pass
        stack_file.remove(stack.state_dir)


def env(
    state_dir: Path = typer.Option(None, "--state-dir", envvar=STATE_DIR_ENV, help="The stack's state dir (default .dnsctl).", show_default=False),
) -> None:
    """Print the running stack's settings as shell exports, for boto3, the aws CLI, dig and other shells:
    eval "$(dnsctl env)"."""
    stack = stack_file.read(state_dir)
    if stack is None:
        err_console.print(f"[red]error:[/red] no stack described at {stack_file.state_dir(state_dir) / stack_file.FILE_NAME}: "
                          "start one with `dnsctl up`, or give --state-dir / DNSCTL_STATE_DIR", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if not stack.running:
        err_console.print(f"[yellow]warning:[/yellow] the process that wrote {stack.path} (pid {stack.data.get('supervisor_pid')}) "
                          "is not running; these settings may be stale", highlight=False, soft_wrap=True)
    import shlex

    for key, value in stack_file.env_exports(stack).items():
        typer.echo(f"export {key}={shlex.quote(value)}")
    if stack.dns:
        typer.echo(f"# dig @{stack.dns[0]} -p {stack.dns[1]} <endpoint> A   (run {stack.run_id}, {stack.mode or '?'} mode)")


def _other_shells(state_dir: Path) -> list[str]:
    """How to reach this stack from another terminal, one command per line (an 80-column terminal
    must not break a flag in two): the program as it was run (.venv/bin/dnsctl from a fresh clone,
    where `dnsctl` is not on PATH), and --state-dir only when the default would not find it."""
    program = sys.argv[0] if Path(sys.argv[0]).name == "dnsctl" else "dnsctl"
    flag = "" if state_dir == Path(stack_file.DEFAULT_STATE_DIR).resolve() else f" --state-dir {state_dir}"
    return [f"other shells: {program}{flag} status", f"          or: eval \"$({program} env{flag})\""]


def _registered_commands() -> list[str]:
    from cli.main import app

    return [c.name or c.callback.__name__ for c in app.registered_commands] + [g.name for g in app.registered_groups]


def _summary(line: str) -> str:
    """A one-shot's last log event in words ("zones_ready endpoints=3 created=3")."""
    try:
        event = json.loads(line)
    except ValueError:
        return line
    skip = {"event", "level", "ts", "process", "pid", "seq", "run"}
    return " ".join([str(event.get("event", ""))] + [f"{k}={v}" for k, v in event.items() if k not in skip])


def _watch(sup: Supervisor, host: str, ports: Ports, duration: float, live: bool, stopping: dict) -> None:
    from cli.stack_view import render_stack

    started = time.monotonic()
    interactive = live and sys.stdout.isatty()
    last_print = 0.0
    if interactive:
        from rich.live import Live

        with Live(render_stack(sup, host, ports, console.width), console=console, refresh_per_second=1) as view:
            while not stopping["now"] and not (duration and time.monotonic() - started > duration):
                time.sleep(1.0)
                _restart_check(sup)
                view.update(render_stack(sup, host, ports, console.width))
        return
    while not stopping["now"] and not (duration and time.monotonic() - started > duration):
        time.sleep(0.5)
        _restart_check(sup)
        if live and time.monotonic() - last_print > 10:
            console.print(render_stack(sup, host, ports, console.width))
            last_print = time.monotonic()


def _restart_check(sup: Supervisor) -> None:
    """Restart crashed services (with backoff), and say so, as compose's restart: unless-stopped does."""
    for child in sup.children:
        if child.process.poll() is not None and child.restart_at is None:
            console.print(f"[red]{child.spec.name} exited with code {child.process.returncode}[/red] (log {child.log_path})")
    for child in sup.restart_crashed():
        console.print(f"[yellow]restarted[/yellow] {child.spec.name} (restart {child.restarts}, pid {child.process.pid})")


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down)
    app.command("env")(env)


__all__ = ["register"]
