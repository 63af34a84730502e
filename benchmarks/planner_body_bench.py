"""Planner memory (RSS) under one unauthenticated 55 MB POST: with Content-Length, and chunked.

Starts its own emulator and planner as separate processes, reads the planner's resident memory
from /proc (VmRSS now, VmHWM the peak since start) before and after each request, and prints
the reply each request got. The body limit (services/web.py) refuses the request with 413
before the body is parsed or the token is checked, so the peak should barely move.

    .venv/bin/python benchmarks/planner_body_bench.py [--mb 55]

Figures depend on the machine; nothing here asserts a size.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.processes import ManagedProcess, free_port  # noqa: E402

CHUNK = 64 * 1024


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def send(port: int, size: int, chunked: bool) -> tuple[str, float, int]:
    """Send an unauthenticated POST of `size` bytes; (status line, seconds, bytes the server took)."""
    started = time.monotonic()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        head = "POST /v1/fleet/load-balancers HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n"
        s.sendall(head.encode())
        block = b"[" + b"1," * (CHUNK // 2 - 1) + b"1"
        try:
            while sent < size:
                piece = block[: min(CHUNK, size - sent)]
                s.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
                sent += len(piece)
            if chunked:
                s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: the rest was never read
        try:
            reply = s.recv(4096).decode(errors="replace")
        except (ConnectionResetError, TimeoutError):
            reply = ""
    status = reply.split("\r\n", 1)[0] if reply else "(connection closed without a reply)"
    return status, time.monotonic() - started, sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=55.0, help="body size in MB")
    args = parser.parse_args()
    size = int(args.mb * 1024 * 1024)
    logs = Path(tempfile.mkdtemp(prefix="planner-body-bench-"))
    emu_port, port = free_port(), free_port()
    emulator = ManagedProcess("emulator", ["emulator", "--port", str(emu_port)], None, logs)
    planner = None
    try:
        emulator.wait_http(f"http://127.0.0.1:{emu_port}/moto-api/", timeout_s=60)
        env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{emu_port}", "DNSCTL_BUCKET": f"bench-{uuid.uuid4().hex[:8]}",
               "DNSCTL_API_TOKEN": uuid.uuid4().hex, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "DNSCTL_STATE_DIR": str(logs / "state")}
        planner = ManagedProcess("planner", ["planner", "--port", str(port), "--plan-interval", "3600"], env, logs)
        planner.wait_http(f"http://127.0.0.1:{port}/healthz", timeout_s=60)
        httpx.get(f"http://127.0.0.1:{port}/v1/fleet", timeout=10)
        time.sleep(1.0)
        rss, peak = memory_mb(planner.pid)
        print(f"planner at rest: RSS {rss:.1f} MB (peak so far {peak:.1f} MB)")
        for chunked in (False, True):
            status, seconds, sent = send(port, size, chunked)
            time.sleep(0.5)
            rss, peak = memory_mb(planner.pid)
            how = "chunked, no Content-Length" if chunked else "Content-Length"
            print(f"unauthenticated POST of {args.mb:g} MB ({how}): {status!r} after {seconds:.2f}s, "
                  f"{sent / 1e6:.1f} MB sent before the server closed; RSS now {rss:.1f} MB, peak {peak:.1f} MB")
        alive = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code
        print(f"planner /healthz afterwards: {alive}")
    finally:
        if planner is not None:
            planner.stop()
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
