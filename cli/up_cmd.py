"""`dnsctl up` and `dnsctl down`: the whole stack as local processes, the way `make demo` runs it."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import typer
from rich.console import Console

from services import auth
from services.stack import EMULATOR_CREDENTIALS, Ports, services
from services.supervisor import (
    PortInUse,
    ServiceFailed,
    Supervisor,
    check_ports,
    read_stack_file,
    stop_process_group,
    tail,
)

console = Console()


def up(
    host: str = typer.Option("127.0.0.1", help="Address every service binds to."),
    emulator_port: int = typer.Option(4566, help="Port of the Route 53 + S3 emulator."),
    planner_port: int = typer.Option(8080),
    enactor_ports: str = typer.Option("8081,8082,8083", help="Ports of enactor-a, -b and -c."),
    dns_port: int = typer.Option(8053, help="UDP and TCP port of the DNS data plane."),
    prober_port: int = typer.Option(8090),
    console_port: int = typer.Option(8088, help="Port of the live web console."),
    version_guard: bool = typer.Option(True, "--version-guard/--no-version-guard", help="Run the enactors guarded (default) or in legacy mode."),
    plan_interval: float = typer.Option(5.0, help="Seconds between scheduled plans."),
    allow_chaos: bool = typer.Option(True, "--allow-chaos/--no-chaos", help="Enable the enactors' chaos routes (for the race lab)."),
    emulator: bool = typer.Option(True, "--emulator/--no-emulator", help="Start the local emulator; --no-emulator uses boto3's own AWS configuration."),
    state_dir: Path = typer.Option(Path(".dnsctl"), help="Token, logs and the stack's pid file."),
    duration: float = typer.Option(0.0, help="Stop by itself after this many seconds (0: run until Ctrl-C)."),
    live: bool = typer.Option(True, "--live/--no-live", help="Show the compact live view."),
) -> None:
    """Start the emulator, planner, three enactors, DNS server, prober and web console; Ctrl-C stops them all."""
    ports = Ports(
        emulator=emulator_port,
        planner=planner_port,
        enactors=tuple(int(p) for p in enactor_ports.split(",")),
        dns=dns_port,
        prober=prober_port,
        console=console_port,
    )
    if len(ports.enactors) != 3:
        raise typer.BadParameter("give three ports, for enactor-a, -b and -c", param_hint="--enactor-ports")
    state_dir = state_dir.resolve()
    os.environ["DNSCTL_STATE_DIR"] = str(state_dir)
    auth.ensure_token()
    specs = services(ports, host=host, version_guard=version_guard, plan_interval_s=plan_interval, allow_chaos=allow_chaos)
    if not emulator:
        specs = [s for s in specs if s.name != "emulator"]
        for s in specs:
            s.env.pop("AWS_ENDPOINT_URL", None)
    available = set(_registered_commands())
    specs = [s for s in specs if s.args[0] in available]
    try:
        check_ports(specs, host)
    except PortInUse as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc

    base_env = {"DNSCTL_STATE_DIR": str(state_dir)}
    if emulator:
        # The emulator accepts any credentials; real ones must never be sent to it.
        base_env.update(EMULATOR_CREDENTIALS)
        base_env["AWS_ENDPOINT_URL"] = f"http://{host}:{ports.emulator}"
        os.environ.pop("AWS_PROFILE", None)
    # This process is a client of the stack too (zone bootstrap, live view): same settings as the children.
    os.environ.update(base_env)
    sup = Supervisor(host=host, state_dir=state_dir, base_env=base_env)

    stopping = {"now": False}

    def _on_signal(signum, _frame):
        stopping["now"] = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        for spec in specs:
            if stopping["now"]:
                break
            child = sup.start(spec)
            if spec.oneshot:
                console.print(f"[green]done[/green] {spec.name:<10} {_summary(tail(child.log_path, 1))}")
                continue
            where = f"udp+tcp {host}:{spec.port}" if spec.protocol != "tcp" else child.url(host)
            console.print(f"[green]up[/green] {spec.name:<10} {where}  (log {child.log_path})")
        if not stopping["now"]:
            console.print(f"API token in {auth.token_path()}; logs in {sup.log_dir}. Ctrl-C stops everything.")
            _watch(sup, host, ports, duration, live, stopping)
    except ServiceFailed as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    finally:
        sup.stop_all(on_stop=lambda name: console.print(f"[yellow]stopped[/yellow] {name}"))


def down(state_dir: Path = typer.Option(Path(".dnsctl"))) -> None:
    """Stop a stack started by `dnsctl up` in another terminal."""
    data = read_stack_file(state_dir.resolve())
    if not data:
        console.print("no running stack found (no .dnsctl/stack.json)")
        raise typer.Exit(0)
    try:
        os.kill(int(data["supervisor_pid"]), signal.SIGTERM)
        console.print(f"asked dnsctl up (pid {data['supervisor_pid']}) to stop")
    except ProcessLookupError:
        # The supervisor is gone; stop its children directly.
        for name, svc in data.get("services", {}).items():
            try:
                os.killpg(int(svc["pid"]), signal.SIGTERM)
                console.print(f"stopped {name}")
            except ProcessLookupError:
                pass
        (state_dir / "stack.json").unlink(missing_ok=True)


def _registered_commands() -> list[str]:
    from cli.main import app

    return [c.name or c.callback.__name__ for c in app.registered_commands] + [g.name for g in app.registered_groups]


def _summary(line: str) -> str:
    """A one-shot's last log event in words ("zones_ready endpoints=3 created=3")."""
    try:
        event = json.loads(line)
    except ValueError:
        return line
    skip = {"event", "level", "ts", "process", "pid", "seq"}
    return " ".join([str(event.get("event", ""))] + [f"{k}={v}" for k, v in event.items() if k not in skip])


def _watch(sup: Supervisor, host: str, ports: Ports, duration: float, live: bool, stopping: dict) -> None:
    from cli.stack_view import render_stack

    started = time.monotonic()
    interactive = live and sys.stdout.isatty()
    last_print = 0.0
    if interactive:
        from rich.live import Live

        with Live(render_stack(sup, host, ports), console=console, refresh_per_second=1) as view:
            while not stopping["now"] and not (duration and time.monotonic() - started > duration):
                time.sleep(1.0)
                _restart_check(sup)
                view.update(render_stack(sup, host, ports))
        return
    while not stopping["now"] and not (duration and time.monotonic() - started > duration):
        time.sleep(0.5)
        _restart_check(sup)
        if live and time.monotonic() - last_print > 10:
            console.print(render_stack(sup, host, ports))
            last_print = time.monotonic()


def _restart_check(sup: Supervisor) -> None:
    for child in sup.children:
        if child.process.poll() is not None and not getattr(child, "_reported", False):
            console.print(f"[red]{child.spec.name} exited with code {child.process.returncode}[/red] (log {child.log_path})")
            child._reported = True  # type: ignore[attr-defined]


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down)


__all__ = ["register", "stop_process_group"]
