"""Model checker figures: states, states/s and seconds for legacy (time to the first
counterexample), guarded (time to exhaust), guarded with 5 plans and guarded with 2 endpoints,
with every reduction on and with each switched off alone (partial-order reduction, budget
subsumption, and for 2 endpoints the per-endpoint decomposition); then every reduction at small
bounds. The load average is printed beside each run (the machine may be shared).

    .venv/bin/python benchmarks/checker_bench.py [--only legacy,guarded,plans5,endpoints2] [--off none,por,subsume,decompose] [--limit-s 900]

The figures do not depend on today's served-type defect (see lab/checker/invariants.py,
ServedIsApplied): legacy runs leave ServedIsApplied out so they time the race of 20 October, and
guarded runs explore the whole space whatever they find (counterexamples are listed, not
stopped at). A run cut by --limit-s says so and prints what it reached. Figures depend on the
machine and its load (CPU seconds and states per CPU second are printed beside the wall figures:
on a shared machine the wall figures are mostly the load); nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.checker.explore import explore  # noqa: E402
from lab.checker.invariants import SERVED_IS_APPLIED  # noqa: E402
from lab.checker.world import Bounds, World  # noqa: E402

CASES = {
    "legacy": dict(guard=False),
    "guarded": dict(guard=True),
    "plans5": dict(guard=True, plans=5),
    "endpoints2": dict(guard=True, endpoints=2),
}


def rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def run(name: str, bounds: Bounds, limit_s: float, off: str = "", **kw) -> None:
    legacy = not bounds.guard
    world = World(bounds, ignore=(SERVED_IS_APPLIED,) if legacy else (), **kw)
    cpu = time.process_time()
    result = explore(world, stop_at_first=legacy, check_progress=not legacy, max_seconds=limit_s)
    cpu = time.process_time() - cpu
    per_cpu_s = result.states / cpu if cpu > 0 else 0.0
    load = os.getloadavg()[0]
    line = (f"  {name:10} {('off: ' + off) if off else 'all on':14}  states {result.states:>10,}  transitions {result.transitions:>11,}  "
            f"{result.states_per_s:>7,.0f} states/s wall  {per_cpu_s:>7,.0f} states/s cpu  {result.elapsed_s:7.1f} s wall  {cpu:7.1f} s cpu  ")
    cx = result.counterexample
    if legacy:
        line += f"first counterexample {len(cx.labels)} steps ({','.join(cx.invariants)})" if cx else "no counterexample"
    elif result.timed_out:
        line += f"NOT exhausted: cut at {limit_s:.0f} s, depth {result.depth}"
    else:
        found = sorted({i for c in result.counterexamples for i in c.invariants})
        line += f"exhausted, depth {result.depth}; " + (f"violations: {', '.join(found)}" if found else "no violation")
    print(line + f"  [load {load:.1f}, max RSS {rss_mb()} MB]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(CASES), help="cases to run: " + ", ".join(CASES))
    parser.add_argument("--limit-s", type=float, default=900.0, help="cut a run after this many seconds")
    parser.add_argument("--off", default="none,por,subsume,decompose",
                        help="runs: none (every reduction on), or the one reduction switched off: por, subsume, decompose (2 endpoints only)")
    parser.add_argument("--small", action="store_true", help="also compare every reduction at small bounds")
    args = parser.parse_args()
    print(f"default bounds: {Bounds()}")
    for name in args.only.split(","):
        for off in args.off.split(","):
            if off == "decompose" and CASES[name].get("endpoints", 1) < 2:
                continue
            switch = {} if off == "none" else {off: False}
            run(name, Bounds(**CASES[name], **switch), args.limit_s, "" if off == "none" else off)
    if args.small:
        small = dict(enactors=2, plans=3, keep_plans=1, lost_replies=0)
        print("reductions, guarded, small bounds (states to exhaust):")
        for label, kw, off in (("all", {}, {}), ("", {}, {"por": False}), ("", {}, {"subsume": False}), ("", {}, {"symmetry": False}),
                               ("", {"reduce": False}, {}), ("every reduction", {"reduce": False}, {"por": False, "subsume": False, "symmetry": False})):
            what = label or ", ".join(off) or "sleep/dead/doomed"
            run("small", Bounds(**small, **off), args.limit_s, "" if label == "all" else what, **kw)


if __name__ == "__main__":
    main()
