"""How long the CLI spends importing modules before a command runs (`python -X importtime`).

    python benchmarks/cli_import_bench.py [--runs 5] [--tree PATH]

For each command line it runs `python -X importtime -m cli.main ARGS` in a fresh process and prints,
as the median over the runs:
- imports: the sum of the cumulative time of the top-level imports (what the interpreter spent
  importing, not the command's own work);
- CPU: the child process's user+sys seconds (the whole process: interpreter start, imports and
  the command). On a machine shared with other work, wall seconds mostly measure waiting; CPU
  seconds do not;
- wall: the whole process, start to exit;
- the number of modules imported (not noisy) beside them.

Cases:
- `status (no stack)`: an empty state dir and no AWS settings: it stops at its "no AWS settings"
  error right after resolving where AWS is.
- `status (stack)`: a stack description whose services and emulator are on ports nothing listens
  on, so `status` runs its whole path (Route 53 client, planner, enactors, DNS, prober) and every
  call is refused at once: the modules a real `status` imports before and during its calls. This
  is also `status --direct`, and `status` of a stack without a console (`dnsctl race --keep-stack`).
- `status (console)`: the same stack with a real emulator and a real console (`dnsctl emulator`,
  `dnsctl console`, started here and stopped at the end) in its description, as `dnsctl up` writes
  it: `status` takes the console's view (GET /api/state) and reads nothing else itself.
- `status (cells)`: the same with a cell and the cell map in the description and named to the
  console (`dnsctl up --cells 1 --accounts N`'s flags, their services on closed ports): `status`
  takes the console's view grouped by cell (services/prober/cell_groups.py), as for one without.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = (
    ("--help",), ("status (no stack)", "status"), ("status (stack)", "status"), ("status (console)", "status"),
    ("status (cells)", "status"), ("status", "--help"), ("timeline", "--help"),
)
CELL_SERVICES = ("cell-1-planner", "cell-1-enactor-a", "cellmap-planner", "cellmap-enactor-a")


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unreachable_stack(where: Path, live: dict[str, int] | None = None, cells: bool = False) -> dict[str, int]:
    """A stack.json whose every service (and emulator) is a closed port on 127.0.0.1, but those
    in `live` (name -> port of a process that runs); with `cells`, a cell's and the cell map's
    planner and enactor too; returns the ports."""
    names = ("emulator", "planner", "enactor-a", "enactor-b", "enactor-c", "dns", "prober", *(CELL_SERVICES if cells else ()))
    ports = {**{name: closed_port() for name in names}, **(live or {})}
    services = {name: {"port": port, "protocol": "udp+tcp" if name == "dns" else "tcp"} for name, port in ports.items()}
    where.mkdir(parents=True, exist_ok=True)
    (where / "stack.json").write_text(json.dumps({
        "run_id": "bench", "mode": "guarded", "host": "127.0.0.1", "supervisor_pid": os.getpid(), "services": services,
        "aws_env": {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{ports['emulator']}", "AWS_ACCESS_KEY_ID": "bench",
                    "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"},
    }))
    return ports


def console_stack(where: Path, env: dict[str, str], tree: Path, cells: bool = False) -> list[subprocess.Popen]:
    """A real emulator and a real console (whose planner, enactors, prober and DNS are the closed
    ports of the description; with `cells` also a cell's and the cell map's), up and with a view
    published; the processes to stop."""
    import httpx

    emulator, console = closed_port(), closed_port()
    ports = unreachable_stack(where, {"emulator": emulator, "console": console}, cells)
    child_env = {**env, "PYTHONPATH": str(tree), "DNSCTL_STATE_DIR": str(where), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{emulator}",
                 "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    peers = ["--planner", f"http://127.0.0.1:{ports['planner']}", "--prober", f"http://127.0.0.1:{ports['prober']}",
             "--dns", f"127.0.0.1:{ports['dns']}", *(a for e in ("enactor-a", "enactor-b", "enactor-c")
                                                      for a in ("--enactor", f"http://127.0.0.1:{ports[e]}"))]
    if cells:
        peers += ["--enactor", f"cell-1-enactor-a=http://127.0.0.1:{ports['cell-1-enactor-a']}", "--enactor",
                  f"cellmap-enactor-a=http://127.0.0.1:{ports['cellmap-enactor-a']}", "--cell-planner",
                  f"cell-1=http://127.0.0.1:{ports['cell-1-planner']}", "--cellmap-planner", f"http://127.0.0.1:{ports['cellmap-planner']}"]
    procs = []
    for args in (("emulator", "--port", str(emulator)), ("console", "--port", str(console), *peers)):
        procs.append(subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=tree, env=child_env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            state = httpx.get(f"http://127.0.0.1:{console}/api/state", timeout=2).json()
            if isinstance(state, dict) and state.get("route53_error") is None and ("cells" in state) == cells:
                return procs
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    stop(procs)
    raise SystemExit("the console never published a view with Route 53 read")


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def measure(args: tuple[str, ...], env: dict[str, str], tree: Path = ROOT) -> tuple[float, float, float, int, bool]:
    """(import seconds, CPU seconds, wall seconds, modules, botocore imported) of one fresh `dnsctl ARGS`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "cli.main", *args], cwd=tree, env={**env, "PYTHONPATH": str(tree)},
                         capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    total_us = 0
    modules = 0
    botocore = False  # the console path must not need it: a status that does read Route 53 itself
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        _, cumulative, name = line.split("|")
        modules += 1
        botocore = botocore or name.strip().split(".")[0] == "botocore"
        if not name[1:].startswith(" "):  # top level: one space after the bar, no nesting indent
            total_us += int(cumulative)
    return total_us / 1e6, cpu, wall, modules, botocore


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tree", type=Path, default=ROOT, help="Source tree to measure (e.g. a worktree of main).")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty, stacked, consoled, celled = Path(tmp) / "empty", Path(tmp) / "stack", Path(tmp) / "console", Path(tmp) / "cells"
        empty.mkdir()
        unreachable_stack(stacked)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DNSCTL_"))}
        base.update(HOME=tmp)  # no ~/.aws
        procs = console_stack(consoled, base, opts.tree)
        try:
            procs += console_stack(celled, base, opts.tree, cells=True)
            for case in COMMANDS:
                label, args = (case[0], case[1:]) if "(" in case[0] else (" ".join(case), case)
                where = {"status (stack)": stacked, "status (console)": consoled, "status (cells)": celled}.get(label, empty)
                env = {**base, "DNSCTL_STATE_DIR": str(where)}
                samples = [measure(args, env, opts.tree) for _ in range(opts.runs)]
                imports, cpu, wall = (statistics.median(s[i] for s in samples) for i in range(3))
                print(f"dnsctl {label:<18} imports {imports:6.3f} s  CPU {cpu:6.3f} s  wall {wall:6.3f} s  (medians of {opts.runs}), "
                      f"{samples[0][3]} modules{', botocore' if samples[0][4] else ''}   [load average {os.getloadavg()[0]:.1f}]")
        finally:
            stop(procs)


if __name__ == "__main__":
    main()
