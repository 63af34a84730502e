"""`dnsctl check --ablate`: which part of the guard carries the safety.

Each part of the guarded core (ABLATIONS in mutants.py: the freshness re-check after each
listing, the `_applied` compare-and-swap, the clean-up's protection, the heal, the lock counter)
is switched off alone, as a named source edit of a copy of enactor/protocol.py, and the copy is
checked at the given bounds. A part whose removal breaks an invariant carries that invariant
(the shortest trace shows how); one whose removal breaks nothing is redundant within these bounds.
The unmutated core is checked first: what it breaks already is not blamed on a part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from lab.checker import trace
from lab.checker.explore import explore
from lab.checker.mutants import ABLATIONS, by_name, core_module
from lab.checker.world import Bounds, World


@dataclass
class Row:
    part: str
    mutant: str
    verdict: str  # the invariants broken, or "redundant within these bounds"
    steps: int | None
    states: int
    seconds: float
    lines: list[str]


def ablate(bounds: Bounds, ignore=(), echo: Callable[[str], None] = print, parts=None) -> list[Row]:
    bounds = replace(bounds, guard=True)
    base = list(ignore)
    while True:
        result = explore(World(bounds, ignore=base))
        if result.counterexample is None:
            break
        base += [i for i in result.counterexample.invariants if i not in base]
        echo(f"the complete guard already breaks {', '.join(result.counterexample.invariants)} at these bounds: not blamed on a part")
    echo(f"complete guard: no counterexample ({result.states:,} states, {result.elapsed_s:.1f} s)"
         + (f"; not reported: {', '.join(base)}" if base else ""))
    rows = []
    for part, name in ABLATIONS:
        if parts is not None and name not in parts:
            continue
        core = core_module(by_name(name))
        world = World(bounds, core, ignore=base)
        result = explore(world)
        cx = result.counterexample
        if cx is None:
            row = Row(part, name, "redundant within these bounds", None, result.states, result.elapsed_s, [])
        else:
            lines = trace.report(world, cx).lines()
            row = Row(part, name, ", ".join(cx.invariants), len(cx.labels), result.states, result.elapsed_s, lines)
        rows.append(row)
        echo(f"- without {part} ({name}): {row.verdict}"
             + (f", shortest trace {row.steps} steps" if row.steps else "") + f" [{row.states:,} states, {row.seconds:.1f} s]")
    echo("")
    echo("| part of the guard switched off | fails | shortest trace |")
    echo("| --- | --- | --- |")
    for row in rows:
        echo(f"| {row.part} | {row.verdict} | {f'{row.steps} steps' if row.steps else '-'} |")
    for row in rows:
        if row.lines:
            echo("")
            echo(f"Without {row.part}:")
            for line in row.lines:
                echo("  " + line)
    return rows
