"""`dnsctl race`: replay the race of 20 October 2025 on a live stack and print the verdict.

By default it starts a private stack on free ports (emulator, planner, three enactors, DNS
server, prober, as `dnsctl up` runs them), in legacy mode unless --guard on, runs the scripted
scenario (lab/race/scenario.py), prints the key moments and the verdict, and stops the
stack. Its logs stay in the state directory for `dnsctl timeline`. --attach runs the same script
against the stack `dnsctl up` runs (whose enactors must allow chaos, as `dnsctl up` makes them);
with --cell, inside one of its cells. On a stack with a web console (--attach, --keep-stack) the
model checker's shortest October race is saved beside the stack and the "next:" lines link the
console's trace viewer at it (lab/race/trace.py).

Exit status: 0 when the mode did what it must (legacy broke the October way, or the guard
held), 1 when it did not, 2 when the race could not run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli.port_flags import port_option, ports_from_flags

console = Console()
if not console.is_terminal:
    console = Console(width=200)  # piped or captured: do not squeeze the key moments to 80 columns
err = Console(stderr=True)

_STYLE = {"cause": "bold red", "anomaly": "red", "alarm": "yellow", "guard": "green", "script": "cyan"}


def race(
    guard: str = typer.Option(
        None, "--guard", help="on: the version guard (the fix); off: legacy, as on 20 October. Default: off, or the attached stack's mode."
    ),
    attach: bool = typer.Option(False, "--attach", help="Race on the stack `dnsctl up` runs (see --state-dir) instead of a private one."),
    state_dir: Path = typer.Option(
        None, "--state-dir", help="Private stack: where its token and logs go (default: a new temp dir). --attach: the stack's (default .dnsctl).",
        show_default=False,
    ),
    burst_plans: int = typer.Option(12, min=1, max=500, help="The burst: this many plans, published one by one however long that takes ..."),
    burst_every_ms: int = typer.Option(250, min=10, max=60_000, help="... one every this many ms at most."),
    flip_delay_s: float = typer.Option(1.5, min=0.1, max=60, help="How long enactor-a and -c hold back a flip in the last act."),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict, checks and key moments as JSON."),
    keep_stack: bool = typer.Option(
        False, "--keep-stack", help="Keep the private stack running after the verdict (to look around, or repair it) until Ctrl-C."
    ),
    host: str = typer.Option("127.0.0.1", help="Address the private stack's services bind to."),
    emulator_port: int = port_option("emulator", 0),
    planner_port: int = port_option("planner", 0),
    enactor_ports: str = port_option("enactors", "0,0,0"),
    dns_port: int = port_option("dns", 0),
    prober_port: int = port_option("prober", 0),
    console_port: int = port_option("console", 0),  # a private stack has a console only with --keep-stack
    cell: str | None = typer.Option(None, "--cell", help="Race inside this cell (cell-N): its planner and enactors; the others and the regional system look on. "
                                    "With --attach, a cell of the running `dnsctl up --cells N` stack."),
    cells: int | None = typer.Option(None, "--cells", min=0, max=20, help="Cells beside the regional system in the private stack (default 3 with --cell or --accounts, else 0)."),
    with_checker: bool = typer.Option(
        None, "--checker/--no-checker", show_default=False,
        help="After the verdict, have the model checker write its shortest October race beside the stack for the console's "
             "trace viewer (default: on when the stack has a console, --attach or --keep-stack, and the output is not --json).",
    ),
    accounts: int | None = typer.Option(None, "--accounts", min=0, max=9_996, help="Accounts in the cell map (default 12 with cells); the verdict counts those that lost DNS, per cell."),
) -> None:
    """Replay 20 October on real processes: enactor-c falls behind, a burst of plans, the clean-up race."""
    from cli.client import ServiceError
    from lab.race.control import Control
    from lab.race.evidence import gather
    from lab.race.scenario import Race, RaceAborted, RaceSettings
    from lab.race.stack import StackError, attach_or_start, start_private
    from lab.race.verdict import judge
    from services.logs import configure
    from services.supervisor import ServiceFailed

    if guard not in (None, "on", "off"):
        raise typer.BadParameter("give on or off", param_hint="--guard")
    settings = RaceSettings(burst_every_ms=burst_every_ms, burst_plans=burst_plans, flip_delay_s=flip_delay_s)
    if cell is not None:
        from services.cells.naming import BadCell, check_cell

        try:
            check_cell(cell)
        except BadCell as exc:
            raise typer.BadParameter(str(exc), param_hint="--cell") from None
    if attach and (cells is not None or accounts is not None):
        raise typer.BadParameter("--cells and --accounts shape a private stack; an attached one has the cells `dnsctl up --cells` gave it",
                                 param_hint="--cells")
    n_cells = cells if cells is not None else (3 if cell is not None or accounts else 0)
    n_accounts = accounts if accounts is not None else (12 if n_cells else 0)
    say = (lambda text: None) if as_json else (lambda text: console.print(text, highlight=False))
    stack = None
    checker = None
    try:
        ports = None if attach else ports_from_flags(host, emulator_port, planner_port, enactor_ports, dns_port, prober_port, console_port)
        mode = "guarded" if guard == "on" else "legacy"
        extra = f" with {n_cells} cells and {n_accounts} accounts, racing in {cell or 'the regional system'}" if n_cells else ""
        stack = attach_or_start(attach, state_dir, temp_prefix="dnsctl-race-", what=f"{mode} stack", extra=extra, say=say, cell=cell,
                                start=lambda where: _start_with_progress(start_private, where, guard == "on", host, ports, quiet=as_json,
                                                                         cells=n_cells, accounts=n_accounts, cell=cell, console=keep_stack))
        log_path = stack.log_dir / "race.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        configure(process="race", stream=open(log_path, "a", buffering=1))  # noqa: SIM115 - the process's log for its lifetime
        stack.logs["race"] = log_path
        # A stack with cells is twenty-odd processes on one machine: give its services longer to answer.
        control = Control(stack, timeout_s=30.0) if n_cells else Control(stack)
        if guard is not None:
            running = control.status(next(iter(control.enactors))).get("version_guard")
            if running is not None and running != (guard == "on"):
                which = "guarded" if running else "legacy"
                raise StackError(f"the attached stack runs {which} enactors; drop --guard or restart it (`dnsctl up --{'no-' if not running else ''}version-guard`)")

        def moment(m) -> None:
            say(f"[dim]{m.t:6.2f}s[/dim] [cyan]{m.who:<10}[/cyan] {m.text}")

        run = Race(control, settings, on_moment=moment).run()
        from lab.race.trace import CheckerRun

        # The checker's side of the story, in processes of its own while the evidence is gathered.
        if with_checker if with_checker is not None else (stack.console is not None and not as_json):
            checker = CheckerRun(stack.state_dir, guarded=bool(run.version_guard))
        evidence = gather(control, run)
        verdict = judge(evidence)
        blast = _blast_radius(stack) if stack.cellmap else None
        if blast is not None:
            from dataclasses import replace as _replace

            from lab.race.blast import expected_loss
            from lab.race.verdict import Check

            ok, detail = expected_loss(blast, stack.cell, verdict.broken)
            label = f"only {stack.cell or 'the legacy'} accounts lost DNS" if verdict.broken else "no account lost DNS"
            verdict = _replace(verdict, checks=(*verdict.checks, Check(label, ok, detail)))
        checked = _checker_result(checker, quiet=as_json) if checker is not None else None
        trace_url = _trace_url(stack, checked)
        if as_json:
            out = {
                **verdict.as_dict(),
                "checker": None if checked is None else checked.as_json(trace_url),
                "cell": stack.cell,
                "blast_radius": blast.as_dict() if blast else None,
                "moments": [{"t": m.t, "who": m.who, "text": m.text, "kind": m.kind} for m in evidence.moments],
                "stale_flips": evidence.stale_flips,
                "logs": str(evidence.log_dir) if evidence.log_dir else None,
                "broke_during_burst": run.broke_early,
                "burst_published": run.burst_published,
                "duration_s": evidence.duration_s,
                "timed_out": evidence.timed_out,
                "stack": _describe_stack(stack),
            }
            sys.stdout.write(json.dumps(out, indent=2) + "\n")
            sys.stdout.flush()
        else:
            _print(evidence, verdict)
            if blast is not None:
                _print_blast(blast, stack.cell)
        if not as_json:
            _next_step(stack, evidence, verdict, keep_stack, checked, trace_url)
        if keep_stack and stack.private:
            _hold(stack)
    except (StackError, RaceAborted, ServiceFailed, ServiceError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    finally:
        if checker is not None:
            checker.stop()
        if stack is not None and stack.private:
            stack.stop()
    raise typer.Exit(0 if verdict.passed else 1)


def _describe_stack(stack) -> dict:
    import os

    pids = {c.spec.name: c.process.pid for c in stack.supervisor.children} if stack.supervisor else {}
    return {
        "private": stack.private,
        "state_dir": str(stack.state_dir),
        "emulator": os.environ.get("AWS_ENDPOINT_URL"),
        "planner": stack.planner,
        "enactors": stack.enactors,
        "prober": stack.prober,
        "dns": f"{stack.dns[0]}:{stack.dns[1]}",
        "pids": pids,
    }


def _blast_radius(stack):
    """Accounts that lost DNS and kept it, per cell, from the cell map and the data plane."""
    from cli.client import ServiceClient
    from lab.race.blast import blast_radius
    from services.cells.cellmap import CellMap

    cellmap = CellMap.model_validate(ServiceClient("cellmap-planner", stack.cellmap).get("/v1/cellmap"))
    return blast_radius(cellmap, stack.dns)


def _print_blast(blast, cell: str | None) -> None:
    console.print(f"\n[bold]blast radius[/bold] (race in {cell or 'the regional system'}): accounts that lost DNS, per cell")
    table = Table(show_edge=False)
    for col in ("cell", "lost", "kept"):
        table.add_column(col, justify="left" if col == "cell" else "right")
    for name, counts in blast.per_cell().items():
        style = "red" if counts["lost"] else "green"
        table.add_row(name, f"[{style}]{counts['lost']}[/{style}]", str(counts["kept"]))
    console.print(table)
    console.print(f"{blast.lost} of {blast.lost + blast.kept} accounts lost DNS, {blast.kept} kept it", highlight=False)


class StartProgress:
    """What the start-up spinner says: how many of the stack's services are still starting, and the
    first few by name (the rest counted, so the line fits 80 columns)."""

    SHOWN = 6

    def __init__(self) -> None:
        self.planned: list[str] = []
        self.waiting: list[str] = []

    def plan(self, names: list[str]) -> None:
        self.planned, self.waiting = list(names), list(names)

    def started(self, name: str) -> None:
        if name in self.waiting:
            self.waiting.remove(name)

    def text(self) -> str:
        if not self.planned:
            return "starting the stack ..."
        if not self.waiting:
            return "stack up"
        more = len(self.waiting) - self.SHOWN
        shown = ", ".join(self.waiting[:self.SHOWN]) + (f" and {more} more" if more > 0 else "")
        return f"starting {len(self.waiting)} of {len(self.planned)} services: {shown} ..."


def _start_with_progress(start_private, where: Path, guarded: bool, host: str, ports, quiet: bool, **cells):
    """Start the private stack with a spinner naming what is still starting (it takes tens of
    seconds on a busy machine; with cells, twenty-odd processes take minutes) and a line per
    service as it comes up. The list is the stack's own (start_private's on_planned), cells and
    the cell map included."""
    if quiet:
        return start_private(where, version_guard=guarded, host=host, ports=ports, **cells)
    progress = StartProgress()
    with err.status(progress.text()) as status:
        def plan(names: list[str]) -> None:
            progress.plan(names)
            status.update(progress.text())

        def started(child) -> None:
            progress.started(child.spec.name)
            if child.spec.oneshot:
                err.print(f"  [green]done[/green] {child.spec.name}", highlight=False)
            else:
                err.print(f"  [green]up[/green] {child.spec.name:<10} {host}:{child.spec.port}", highlight=False)
            status.update(progress.text())

        return start_private(where, version_guard=guarded, host=host, ports=ports, on_planned=plan, on_started=started, **cells)


def _checker_result(checker, quiet: bool):
    """The checker's answer, with a spinner while it is still exploring (a few seconds)."""
    if quiet:
        return checker.result()
    with err.status("the model checker: the shortest October race of the legacy core ..."):
        return checker.result()


def _trace_url(stack, checked) -> str | None:
    """The console page that opens the checker's counterexample at once (the stack's console, when it has one)."""
    from lab.race.trace import LEGACY_TRACE

    if checked is None or checked.trace is None or stack.console is None:
        return None
    return f"{stack.console}/#trace={LEGACY_TRACE}"


def _next_step(stack, evidence, verdict, keep_stack: bool, checked, trace_url: str | None) -> None:
    """After the verdict: what to do next, with the environment it needs (the private stack's
    state dir, from which every command finds the stack), and the checker's side of the story."""
    from lab.race.trace import LEGACY_TRACE

    env = f"DNSCTL_STATE_DIR={stack.state_dir}"
    broken = verdict.broken
    console.print("\n[bold]next:[/bold]")
    if stack.private and not keep_stack:
        console.print(f"  this stack stops now; to look around or repair it, run again with --keep-stack "
                      f"(dnsctl race --guard {'on' if evidence.version_guard else 'off'} --keep-stack)", highlight=False)
    if broken:
        console.print(f"  heal every endpoint on Route 53 alone: {env} dnsctl repair --all --newest --break-lock --yes", highlight=False)
    console.print(f"  look at it: {env} dnsctl status   |   {env} dnsctl timeline --stack   |   eval \"$(dnsctl env --state-dir {stack.state_dir})\"",
                  highlight=False, soft_wrap=True)
    what = "why it can happen" if broken else "the interleaving the guard refuses"
    if checked is None:
        trace = stack.state_dir / "traces" / f"{LEGACY_TRACE}.json"
        hint = " (--keep-stack opens it in one click)" if stack.private else ""
        console.print(f"  {what}, step by step{hint}: dnsctl check --guard off --json {trace} && "
                      f"{env} dnsctl console --port 8089, then http://127.0.0.1:8089/#trace={LEGACY_TRACE}", highlight=False, soft_wrap=True)
        return
    if checked.guard_held is not None:
        held = "holds" if checked.guard_held else "[red]does NOT hold[/red]"
        console.print(f"  the model checker says the guard {held} ({checked.commands[-1]}): " + "; ".join(checked.guarded),
                      highlight=False, soft_wrap=True)
    if trace_url is not None:
        console.print(f"  {what}, step by step (the checker's shortest October race): {trace_url}", highlight=False, soft_wrap=True)
    else:
        console.print(f"  [yellow]the checker found no legacy counterexample to show[/yellow] ({'; '.join(checked.legacy)})", highlight=False)


def _hold(stack) -> None:
    """Keep the private stack up until SIGINT/SIGTERM; say how to reach it."""
    import signal
    import threading

    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    err.print(
        f"stack kept running in {stack.state_dir} (every command finds it with --state-dir {stack.state_dir} "
        f"or DNSCTL_STATE_DIR={stack.state_dir}). Ctrl-C stops it.",
        highlight=False, soft_wrap=True,
    )
    done.wait()


def _print(evidence, verdict) -> None:
    table = Table(title="key moments", title_justify="left", show_edge=False)
    for col in ("t", "who", "what"):
        table.add_column(col, justify="right" if col == "t" else "left")
    for m in evidence.moments:
        style = _STYLE.get(m.kind, "")
        table.add_row(f"{m.t:.2f}s", m.who, f"[{style}]{m.text}[/{style}]" if style else m.text)
    console.print(table)
    shown = next((a for _, _, a in evidence.empty_digs() if a.text), None)
    if shown is not None:
        console.print(shown.text, highlight=False)
    colour = "green" if verdict.passed else "red"
    console.print(f"\n[bold {colour}]VERDICT ({verdict.mode}): {verdict.headline}[/bold {colour}]")
    for c in verdict.checks:
        console.print(f"  [{'green' if c.ok else 'red'}]{'✓' if c.ok else '✗'}[/] {c.label}: {c.detail}", highlight=False)
    if evidence.timed_out:
        console.print(f"[yellow]waits that timed out: {'; '.join(evidence.timed_out)}[/yellow]")
    if evidence.log_dir is not None:
        console.print(f"this race's logs: {evidence.log_dir}  (dnsctl timeline {evidence.log_dir}/*.log --html race.html)")


def register(app: typer.Typer) -> None:
    app.command("race")(race)
