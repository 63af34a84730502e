"""How reliably the race reproduces October, and how reliably the guard holds.

Runs `dnsctl race --guard off --json` and `dnsctl race --guard on --json` N times each (20 by
default), every run on a private stack of real processes on free ports, and prints per mode how
many runs broke (an endpoint answered NOERROR with zero addresses, or a root dangled), how many
showed the whole October signature (every legacy check: dig empty, RootAliasDangling,
EnactorStuck, still broken after the next plan), how many passed their mode's checks, and the
run times. The goal: legacy breaks in at least 19 of 20, guarded in 0 of 20.

    .venv/bin/python benchmarks/race_bench.py [--runs 20] [--parallel 1] [--modes off,on] [--keep-logs DIR]

Figures depend on the machine; nothing here asserts anything. Runs whose logs are kept (the
failing ones always) are listed with their log directory, for `dnsctl timeline`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    mode: str
    index: int
    seconds: float
    exit_code: int
    broken: bool | None
    passed: bool | None
    signature: bool | None
    state_dir: Path
    note: str = ""
    early: bool = False  # legacy broke during the burst, before the scripted window


def one(mode: str, index: int, base: Path) -> Run:
    state_dir = base / f"{mode}-{index:02d}"
    started = time.monotonic()
    cmd = [sys.executable, "-m", "cli.main", "race", "--guard", mode, "--json", "--state-dir", str(state_dir)]
    try:
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    except subprocess.TimeoutExpired:
        return Run(mode, index, time.monotonic() - started, -1, None, None, None, state_dir, "timed out after 300 s")
    seconds = time.monotonic() - started
    try:
        out = json.loads(result.stdout)
    except ValueError:
        return Run(mode, index, seconds, result.returncode, None, None, None, state_dir, (result.stderr or result.stdout)[-300:])
    signature = mode == "off" and all(c["ok"] for c in out["checks"])
    failed = [c["label"] for c in out["checks"] if not c["ok"]]
    return Run(mode, index, seconds, result.returncode, out["broken"], out["passed"], signature, state_dir,
               "; ".join(failed + out.get("timed_out", [])), bool(out.get("broke_during_burst")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20, help="Races per mode")
    ap.add_argument("--parallel", type=int, default=1, help="Races at once (each on its own stack)")
    ap.add_argument("--modes", default="off,on", help="--guard values to run, in order")
    ap.add_argument("--keep-logs", type=Path, default=None, help="Keep every run's state directory here")
    args = ap.parse_args()

    base = args.keep_logs or Path(tempfile.mkdtemp(prefix="dnsctl-race-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    print(f"{args.runs} races per mode, {args.parallel} at a time; state directories under {base}", flush=True)
    results: dict[str, list[Run]] = {}
    for mode in args.modes.split(","):
        started = time.monotonic()
        with ThreadPoolExecutor(args.parallel) as pool:
            runs = []
            for run in pool.map(lambda i, m=mode: one(m, i, base), range(1, args.runs + 1)):
                runs.append(run)
                flag = "BROKE" if run.broken else ("held" if run.broken is False else "error")
                print(f"  guard {mode:<3} #{run.index:02d}  {flag:<5}  passed={run.passed}  {run.seconds:5.1f} s  {run.note}", flush=True)
        results[mode] = runs
        print(f"  ({time.monotonic() - started:.0f} s for guard {mode})", flush=True)

    print()
    for mode, runs in results.items():
        n = len(runs)
        broke = sum(1 for r in runs if r.broken)
        errors = sum(1 for r in runs if r.broken is None)
        passed = sum(1 for r in runs if r.passed)
        secs = [r.seconds for r in runs]
        name = "legacy (--guard off)" if mode == "off" else "guarded (--guard on)"
        line = f"{name:<22} broke {broke}/{n}"
        if mode == "off":
            line += f"   full October signature {sum(1 for r in runs if r.signature)}/{n}"
            line += f" (during the burst {sum(1 for r in runs if r.early)}, in the scripted window {sum(1 for r in runs if r.broken and not r.early)})"
        line += f"   passed its checks {passed}/{n}   errors {errors}"
        line += f"   run time median {statistics.median(secs):.1f} s, max {max(secs):.1f} s"
        print(line)
        for r in runs:
            if not r.passed:
                print(f"    #{r.index:02d} did not pass: {r.note or 'exit ' + str(r.exit_code)} (logs: {r.state_dir})")
    if args.keep_logs is None:
        keep = {r.state_dir for runs in results.values() for r in runs if not r.passed}
        for runs in results.values():
            for r in runs:
                if r.state_dir not in keep:
                    shutil.rmtree(r.state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
