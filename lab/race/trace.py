"""The model checker's side of a race: the shortest October interleaving, saved beside the stack.

A race shows what happened once, on real processes; the checker shows why it can happen at all.
After a race on a stack with a web console (`--attach`, `--keep-stack`), the real checker (`dnsctl check --guard off --json`, a process of its own) writes its
shortest counterexample of the legacy core to <state dir>/traces/october-legacy.json, where the
stack's web console serves it (GET /api/traces/october-legacy) and opens it at
/#trace=october-legacy in its trace viewer. A guarded race also asks the checker for the guarded
core at bounds it exhausts in seconds (GUARDED_BOUNDS) and keeps its verdict line: every state
explored, no violation; the legacy counterexample is then the interleaving the guard refuses.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LEGACY_TRACE = "october-legacy"
# The guarded core's whole space at the default bounds is more than 5 million states (cli/check_cmd.py);
# these bounds are exhausted in seconds: two enactors, plans 1..3, keep_plans 1, no lost reply.
GUARDED_BOUNDS = ("--enactors", "2", "--plans", "3", "--keep-plans", "1", "--lost-replies", "0")
CHECK_TIMEOUT_S = 300.0


def traces_dir(state_dir: Path) -> Path:
    return state_dir / "traces"


@dataclass(frozen=True)
class CheckerResult:
    """What the checker said: the legacy counterexample it wrote (None if it found none), its
    summary lines, and for a guarded race the guarded core's summary and whether it held."""

    trace: Path | None
    legacy: tuple[str, ...]
    guarded: tuple[str, ...] = ()
    guard_held: bool | None = None
    commands: tuple[str, ...] = ()

    def as_json(self, trace_url: str | None) -> dict:
        """What `dnsctl race --json` and the console's race button report of it; `trace_url` opens
        the counterexample in a console's trace viewer (None when there is none to open)."""
        return {"trace": str(self.trace) if self.trace else None, "trace_url": trace_url if self.trace else None,
                "legacy": list(self.legacy), "guarded": list(self.guarded), "guard_held": self.guard_held, "commands": list(self.commands)}


class CheckerRun:
    """`dnsctl check` for a race, started now (the legacy counterexample; with `guarded` also the
    guarded core at GUARDED_BOUNDS), collected with result()."""

    def __init__(self, state_dir: Path, guarded: bool):
        self.path = traces_dir(state_dir) / f"{LEGACY_TRACE}.json"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)  # never an earlier run's file taken for this one's
        legacy = ["check", "--guard", "off", "--json", str(self.path)]
        held = ["check", "--guard", "on", *GUARDED_BOUNDS]
        self._runs = [(legacy, self._start(legacy))] + ([(held, self._start(held))] if guarded else [])

    @staticmethod
    def _start(args: list[str]) -> subprocess.Popen:
        # stderr is the checker's progress line (rewritten in place): not part of what it found.
        return subprocess.Popen([sys.executable, "-m", "cli.main", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)

    @staticmethod
    def _collect(proc: subprocess.Popen) -> tuple[int | None, list[str]]:
        try:
            out, errors = proc.communicate(timeout=CHECK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return None, [f"the checker took longer than {CHECK_TIMEOUT_S:.0f} s"]
        lines = [line for line in out.splitlines() if line.strip()]
        if proc.returncode not in (0, 1):  # bad usage or a crash: its error is the story
            lines += [line for line in errors.splitlines() if line.strip()][-3:]
        return proc.returncode, lines

    def result(self) -> CheckerResult:
        (legacy_args, legacy), *guarded = self._runs
        code, lines = self._collect(legacy)
        # `dnsctl check` exits 1 with a counterexample, 0 without one (and then it says which invariants held).
        found = code == 1 and self.path.exists()
        summary = tuple(line for line in lines if line.startswith(("explored ", "Counterexample ", "  => "))) or tuple(lines[-3:])
        commands = ["dnsctl " + " ".join(legacy_args[:-1]) + " cx.json"]
        if not guarded:
            return CheckerResult(self.path if found else None, summary, commands=tuple(commands))
        held_args, held = guarded[0]
        code, lines = self._collect(held)
        kept = tuple(line for line in lines if line.startswith(("explored ", "invariants hold", "no counterexample"))) or tuple(lines[-3:])
        commands.append("dnsctl " + " ".join(held_args))
        return CheckerResult(self.path if found else None, summary, kept, code == 0, tuple(commands))

    def stop(self) -> None:
        for _, proc in self._runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
