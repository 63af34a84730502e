"""How many TCP connections a local stack leaves in TIME-WAIT: a closed connection per request
instead of a reused one fills the port range and makes the next stack fail with "port in use".

    python benchmarks/time_wait_bench.py [--seconds 60] [--tree PATH]

Starts `dnsctl up` (from the source tree PATH, default this one) on free ports with a state dir
of its own, lets it run SECONDS with its live view printing, and counts the sockets in TIME-WAIT
that touch one of the stack's ports (`ss -tan state time-wait`), while it runs and after it
stops. Other stacks on the machine do not count: only this stack's ports are matched.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_wait(ports: set[int]) -> int:
    out = subprocess.run(["ss", "-tanH", "state", "time-wait"], capture_output=True, text=True).stdout
    count = 0
    for line in out.splitlines():
        cols = line.split()
        ends = [c.rsplit(":", 1)[-1] for c in cols if ":" in c]
        if any(e.isdigit() and int(e) in ports for e in ends):
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--tree", type=Path, default=ROOT, help="Source tree to run (e.g. a worktree of main).")
    opts = parser.parse_args()
    ports = {name: free_port() for name in ("emulator", "planner", "a", "b", "c", "prober")}
    ports["dns"] = free_port()
    state = Path(tempfile.mkdtemp(prefix="dnsctl-tw-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DNSCTL_"))}
    env["PYTHONPATH"] = str(opts.tree)
    args = [sys.executable, "-m", "cli.main", "up", "--emulator-port", str(ports["emulator"]), "--planner-port", str(ports["planner"]),
            "--enactor-ports", f"{ports['a']},{ports['b']},{ports['c']}", "--dns-port", str(ports["dns"]),
            "--prober-port", str(ports["prober"]), "--plan-interval", "2", "--state-dir", str(state), "--live"]
    proc = subprocess.Popen(args, cwd=opts.tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    watched = set(ports.values())
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not (state / "stack.json").exists():
            time.sleep(0.5)
        time.sleep(5)  # the rest of the start-up
        t0 = time.monotonic()
        samples = []
        while time.monotonic() - t0 < opts.seconds:
            time.sleep(5)
            samples.append(time_wait(watched))
        running = samples[-1] if samples else 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    after = time_wait(watched)
    print(f"tree {opts.tree}: after {opts.seconds:.0f} s running, {running} sockets of this stack in TIME-WAIT "
          f"(peak {max(samples, default=0)}), {after} just after it stopped; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
