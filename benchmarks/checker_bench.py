"""Model checker figures: states explored, states per second, time to the first counterexample
(legacy) and time to exhaust the space (guarded), at the default bounds and one larger bound;
the effect of each reduction at small bounds; random walks on a bound too large to exhaust.

    .venv/bin/python benchmarks/checker_bench.py [--larger plans=5] [--skip-larger]

`--larger` takes Bounds fields as name=value (comma separated), e.g. "plans=5" or "enactors=4".
Figures depend on the machine and its load; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.checker.explore import explore, random_walks  # noqa: E402
from lab.checker.world import Bounds, World  # noqa: E402


def describe(b: Bounds) -> str:
    return (f"{b.enactors} enactors, {b.endpoints} endpoint, plans {b.plans}, keep {b.keep_plans}, "
            f"expiries {b.lease_expiries}, losses {b.lock_losses}, start {b.start}")


def rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def run(bounds: Bounds, **kw) -> None:
    world = World(bounds, **kw)
    result = explore(world)
    line = (f"  {bounds.mode:8} {describe(bounds):70} states {result.states:>9,}  "
            f"{result.states_per_s:>8,.0f} states/s  ")
    cx = result.counterexample
    if bounds.guard:
        verdict = "no counterexample" if cx is None else f"COUNTEREXAMPLE {','.join(cx.invariants)}"
        line += f"exhausted in {result.elapsed_s:6.2f} s ({verdict}; Progress checked: {result.progress_checked})"
    else:
        first = f"{cx.found_after_s:6.2f} s, {len(cx.labels)} steps, {','.join(cx.invariants)}" if cx else "none"
        line += f"first counterexample {first}"
    print(line + f"  [max RSS so far {rss_mb()} MB]", flush=True)


def parse_bounds(text: str) -> dict:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        out[name] = int(value) if value.lstrip("-").isdigit() else value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--larger", default="plans=5", help="the larger bound (Bounds fields)")
    parser.add_argument("--skip-larger", action="store_true")
    args = parser.parse_args()

    print("default bounds (dnsctl check):")
    run(Bounds(guard=False))
    run(Bounds(guard=True))

    if not args.skip_larger:
        larger = parse_bounds(args.larger)
        print(f"larger bound ({args.larger}):")
        run(Bounds(guard=False, **larger))
        run(Bounds(guard=True, **larger))

    small = dict(enactors=2, plans=3, keep_plans=1)
    print("reductions, guarded, small bounds (states to exhaust):")
    for label, kw, sym in (("all reductions", {}, True), ("no symmetry", {}, False), ("no sleep/dead/doomed reductions", {"reduce": False}, True),
                           ("none", {"reduce": False}, False)):
        world = World(Bounds(symmetry=sym, **small), **kw)
        start = time.perf_counter()
        result = explore(world)
        print(f"  {label:34} states {result.states:>8,}  {time.perf_counter() - start:6.2f} s")

    print("random walks, 4 enactors x 2 endpoints, plans 6 (too large to exhaust):")
    for guard in (False, True):
        world = World(Bounds(guard=guard, enactors=4, endpoints=2, plans=6))
        result = random_walks(world, 200, seed=1)
        cx = result.counterexample
        found = f"counterexample in walk {cx.walk} after {cx.found_after_s:.2f} s ({len(cx.labels)} steps)" if cx else "no counterexample"
        print(f"  {world.bounds.mode:8} {result.walks} walks, {result.transitions:,} steps, {result.states:,} distinct states in "
              f"{result.elapsed_s:.2f} s ({result.transitions / result.elapsed_s:,.0f} steps/s): {found}")


if __name__ == "__main__":
    main()
