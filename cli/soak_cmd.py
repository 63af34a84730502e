"""`dnsctl soak`: a Jepsen-style nemesis on a live stack, a checker over DNS and Route 53, a verdict.

By default it starts a private guarded stack on free ports (the `dnsctl up` stack, through the
race lab's lab/race/stack.py), runs the seeded fault schedule (lab/soak/nemesis.py) and the
operator's changes for --minutes, heals everything, waits for convergence, prints the faults
injected by kind, the checker's figures and the verdict, and the command that replays it, as
FoundationDB's simulator prints its seed. --attach runs it against the stack `dnsctl up` runs.

Exit status: 0 when every property held, 1 when one did not, 2 when the soak could not run.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli.port_flags import port_option, ports_from_flags

console = Console()
if not console.is_terminal:
    console = Console(width=200)
err = Console(stderr=True)


def soak(
    minutes: float = typer.Option(5.0, min=0.1, max=24 * 60, help="How long the nemesis runs (convergence is measured after)."),
    seed: int = typer.Option(None, help="The schedule's seed (default: a random one, printed); the same seed replays the same faults."),
    faults: str = typer.Option("all", help="Fault kinds, comma-separated (default all): "
                               "enactor-pause, enactor-delay, enactor-kill, planner-restart, emulator-restart, "
                               "aws-outage, route53-errors, route53-throttle, plan-burst."),
    attach: bool = typer.Option(False, "--attach", help="Soak the stack `dnsctl up` runs (see --state-dir) instead of a private one."),
    state_dir: Path = typer.Option(None, "--state-dir", show_default=False,
                                   help="Private stack: its state dir (default: a new temp dir). --attach: the stack's (default .dnsctl)."),
    converge_timeout: float = typer.Option(180.0, min=5, max=3600, help="Seconds the stack has to serve the newest plan after the nemesis stops."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    quiet: bool = typer.Option(False, "--quiet", help="Do not print each fault and change as it happens."),
    host: str = typer.Option("127.0.0.1", help="Address the private stack's services bind to."),
    emulator_port: int = port_option("emulator", 0),
    planner_port: int = port_option("planner", 0),
    enactor_ports: str = port_option("enactors", "0,0,0"),
    dns_port: int = port_option("dns", 0),
    prober_port: int = port_option("prober", 0),
) -> None:
    """Faults at seeded random moments (pause, delay, kill -9, restarts, S3/Route 53 outages and throttling, plan bursts) while a checker watches."""
    import signal
    import threading

    from cli.client import ServiceError
    from lab.race.stack import StackError, attach_or_start, start_private
    from lab.soak.nemesis import UnknownFaultKind, parse_kinds
    from lab.soak.run import SOAK_PLAN_INTERVAL_S, SoakAborted, run_soak
    from services.logs import configure
    from services.supervisor import ServiceFailed

    try:
        kinds = parse_kinds(faults)
    except UnknownFaultKind as exc:
        raise typer.BadParameter(str(exc), param_hint="--faults") from exc
    seed = random.SystemRandom().randrange(1, 2**31) if seed is None else seed
    say = (lambda text: None) if as_json or quiet else (lambda text: console.print(text, highlight=False))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = None
    result = None
    try:
        ports = None if attach else ports_from_flags(host, emulator_port, planner_port, enactor_ports, dns_port, prober_port)
        stack = attach_or_start(attach, state_dir, temp_prefix="dnsctl-soak-", what="guarded stack", say=say,
                                start=lambda where: start_private(where, version_guard=True, host=host, ports=ports,
                                                                  plan_interval_s=SOAK_PLAN_INTERVAL_S, enactor_env={}, route53_env={},
                                                                  sign_plans=True))
        log_path = stack.log_dir / "soak.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        configure(process="soak", stream=open(log_path, "a", buffering=1))  # noqa: SIM115 - the process's log for its lifetime
        say(f"seed {seed}, {minutes:g} min, faults: {', '.join(kinds) or 'none'}; log {log_path}")
        result = run_soak(stack, seed=seed, minutes=minutes, kinds=kinds, converge_timeout_s=converge_timeout, on_event=say, stop=stop)
    except (StackError, SoakAborted, ServiceFailed, ServiceError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        err.print(f"replay: {replay_command(seed, minutes, faults, attach)}", highlight=False)
        raise typer.Exit(2) from exc
    finally:
        if stack is not None and stack.private:
            stack.stop()
    if as_json:
        sys.stdout.write(json.dumps(as_dict(result, replay_command(seed, minutes, faults, attach)), indent=2) + "\n")
    else:
        print_result(result, replay_command(seed, minutes, faults, attach), stack.log_dir)
    raise typer.Exit(0 if result.verdict.passed else 1)


CHANGE_STATUSES = ("acknowledged", "refused", "unanswered", "not_made")


def replay_command(seed: int, minutes: float, faults: str, attach: bool) -> str:
    parts = ["dnsctl soak", f"--minutes {minutes:g}", f"--seed {seed}"]
    if faults.strip() not in ("", "all"):
        parts.append(f"--faults {faults.strip()}")
    if attach:
        parts.append("--attach")
    return " ".join(parts)


def as_dict(result, replay: str) -> dict:
    return {
        "passed": result.verdict.passed,
        "seed": result.schedule.seed,
        "minutes": result.schedule.duration_s / 60,
        "faults_by_kind": result.injected_by_kind(),
        "violations_by_kind": result.verdict.by_kind,
        "properties": {k: {"ok": ok, "detail": d} for k, (ok, d) in result.verdict.properties.items()},
        "tally": vars(result.tally),
        "operator_changes": {s: sum(1 for o in result.outcomes if o.status == s) for s in CHANGE_STATUSES},
        "lost_changes": result.lost,
        "converge_s": result.convergence.seconds if result.convergence and result.convergence.converged else None,
        "converge_after_last_fault_s": result.since_last_fault_s,
        "final_version": result.final_version,
        "violations": [asdict(v) for v in result.violations[:50]],
        "notes": result.notes,
        "duration_s": result.duration_s,
        "replay": replay,
    }


def print_result(result, replay: str, log_dir: Path) -> None:
    table = Table(title="faults injected", title_justify="left", show_edge=False)
    for col in ("kind", "scheduled", "injected", "skipped", "violations near it"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for kind, row in result.injected_by_kind().items():
        table.add_row(kind, str(row["scheduled"]), str(row["injected"]), str(row["skipped"]), str(result.verdict.by_kind.get(kind, 0)))
    if "(no fault)" in result.verdict.by_kind:
        table.add_row("(no fault)", "", "", "", str(result.verdict.by_kind["(no fault)"]))
    console.print(table)
    changes = {s: sum(1 for o in result.outcomes if o.status == s) for s in CHANGE_STATUSES}
    t = result.tally
    console.print(f"operator changes: {changes['acknowledged']} acknowledged, {changes['refused']} refused, "
                  f"{changes['unanswered']} unanswered (may be made), {changes['not_made']} not made (planner unreachable); "
                  f"lost {len(result.lost)}", highlight=False)
    console.print(f"DNS: {t.dns_queries} queries, {t.dns_answers} answers, {t.empty} empty, {t.errors} REFUSED/SERVFAIL, "
                  f"{t.timeouts} timeouts; served version read {t.dns_version_reads} times, {t.dns_decreases} decreases", highlight=False)
    console.print(f"Route 53: {t.route53_reads} reads ({t.route53_failed_reads} failed), {t.route53_decreases} decreases, "
                  f"{t.dangling_reads} dangling roots", highlight=False)
    conv = result.convergence
    if conv is not None and conv.converged:
        after = f", {result.since_last_fault_s:.1f}s after the last fault's heal" if result.since_last_fault_s is not None else ""
        console.print(f"converged to plan {conv.version} {conv.seconds:.1f}s after the nemesis stopped{after}", highlight=False)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    for v in result.violations[:10]:
        console.print(f"  [red]{v.t:7.1f}s {v.prop}[/red] {v.endpoint}: {v.detail}", highlight=False)
    console.print()
    for name, (ok, detail) in result.verdict.properties.items():
        mark = "[green]ok  [/green]" if ok else "[red]FAIL[/red]"
        console.print(f"{mark} {name}: {detail}", highlight=False)
    console.print(f"\nverdict: {'[green]PASS[/green]' if result.verdict.passed else '[red]FAIL[/red]'} "
                  f"(seed {result.schedule.seed}, {result.duration_s:.0f}s)", highlight=False)
    console.print(f"replay: {replay}", highlight=False)
    console.print(f"logs: {log_dir} (dnsctl timeline --stack reads them)", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("soak")(soak)
