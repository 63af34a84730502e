"""How long the CLI spends importing modules before a command runs (`python -X importtime`).

    python benchmarks/cli_import_bench.py [--runs 5] [--tree PATH]

For each command line it runs `python -X importtime -m cli.main ARGS` in a fresh process, sums the
cumulative time of the top-level imports (what the interpreter spent importing, not the command's
own work) and prints the median over the runs, with the number of modules imported (not noisy)
beside it. `status` runs with an empty state dir and no AWS settings, so it stops at its
"no AWS settings" error right after its imports; the imports are what is measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = (("--help",), ("status",), ("status", "--help"), ("timeline", "--help"))


def measure(args: tuple[str, ...], env: dict[str, str], tree: Path = ROOT) -> tuple[float, int]:
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "cli.main", *args], cwd=tree, env={**env, "PYTHONPATH": str(tree)},
                         capture_output=True, text=True, timeout=120)
    total_us = 0
    modules = 0
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        _, cumulative, name = line.split("|")
        modules += 1
        if not name[1:].startswith(" "):  # top level: one space after the bar, no nesting indent
            total_us += int(cumulative)
    return total_us / 1e6, modules


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tree", type=Path, default=ROOT, help="Source tree to measure (e.g. a worktree of main).")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DNSCTL_"))}
        env.update(DNSCTL_STATE_DIR=state, HOME=state)  # no stack, no ~/.aws
        for args in COMMANDS:
            samples = [measure(args, env, opts.tree) for _ in range(opts.runs)]
            seconds = statistics.median(s for s, _ in samples)
            print(f"dnsctl {' '.join(args):<18} imports {seconds:6.3f} s (median of {opts.runs}), {samples[0][1]} modules"
                  f"   [load average {os.getloadavg()[0]:.1f}]")


if __name__ == "__main__":
    main()
