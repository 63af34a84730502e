"""The local supervisor behind `dnsctl up`: runs the stack's services as child processes.

It starts each service from services/stack.py in order, waits for its health check, records the
children in the state directory (so `dnsctl down` and the race lab can find them), and stops
them all, in reverse order and by process group, so no child outlives it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.stack import ServiceSpec


class PortInUse(RuntimeError):
    """A service's port is already taken on this host."""


class ServiceFailed(RuntimeError):
    """A service exited or never became healthy; the message holds the end of its log."""


def port_free(host: str, port: int, protocol: str = "tcp") -> bool:
    kinds = [socket.SOCK_STREAM] if protocol == "tcp" else [socket.SOCK_STREAM, socket.SOCK_DGRAM]
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def check_ports(specs: list[ServiceSpec], host: str) -> None:
    taken = [s for s in specs if not s.oneshot and not port_free(host, s.port, s.protocol)]
    if taken:
        detail = ", ".join(f"{s.name} needs {host}:{s.port}" for s in taken)
        raise PortInUse(
            f"port in use: {detail}. Stop whatever holds it (`dnsctl down` if it is an earlier stack) "
            "or choose other ports (see `dnsctl up --help`)."
        )


def _dns_ready(host: str, port: int) -> bool:
    """The DNS server is ready when it accepts a TCP connection."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Child:
    spec: ServiceSpec
    process: subprocess.Popen
    log_path: Path

    def url(self, host: str) -> str:
        return f"http://{host}:{self.spec.port}"


@dataclass
class Supervisor:
    """Owns the children of one `dnsctl up`."""

    host: str
    state_dir: Path
    base_env: dict[str, str]
    children: list[Child] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    def start(self, spec: ServiceSpec, health_timeout_s: float = 60.0) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}.log"
        env = {**os.environ, **self.base_env, **spec.env, "PYTHONUNBUFFERED": "1"}
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", *spec.args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, so a stop reaches its children too
            )
        child = Child(spec, process, log_path)
        if spec.oneshot:
            self._wait_done(child, health_timeout_s)
            return child
        self.children.append(child)
        self._write_stack_file()
        self.wait_healthy(child, health_timeout_s)
        return child

    def _wait_done(self, child: Child, timeout_s: float) -> None:
        try:
            code = child.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stop_process_group(child.process)
            raise ServiceFailed(f"{child.spec.name} did not finish in {timeout_s:.0f}s:\n{tail(child.log_path)}") from None
        if code != 0:
            raise ServiceFailed(f"{child.spec.name} failed with code {code}:\n{tail(child.log_path)}")

    def wait_healthy(self, child: Child, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise ServiceFailed(f"{child.spec.name} exited with code {child.process.returncode}:\n{tail(child.log_path)}")
            if self.is_healthy(child):
                return
            time.sleep(0.1)
        raise ServiceFailed(f"{child.spec.name} not healthy after {timeout_s:.0f}s:\n{tail(child.log_path)}")

    def is_healthy(self, child: Child) -> bool:
        if child.process.poll() is not None:
            return False
        if child.spec.health_path is None:
            return _dns_ready(self.host, child.spec.port)
        try:
            return httpx.get(child.url(self.host) + child.spec.health_path, timeout=1.0).status_code < 500
        except httpx.HTTPError:
            return False

    def stop_all(self, timeout_s: float = 10.0, on_stop: Callable[[str], None] | None = None) -> None:
        for child in reversed(self.children):
            stop_process_group(child.process, timeout_s)
            if on_stop:
                on_stop(child.spec.name)
        self.children.clear()
        self.stack_file.unlink(missing_ok=True)

    def _write_stack_file(self) -> None:
        data = {
            "supervisor_pid": os.getpid(),
            "host": self.host,
            "services": {
                c.spec.name: {"pid": c.process.pid, "port": c.spec.port, "log": str(c.log_path), "args": list(c.spec.args)}
                for c in self.children
            },
        }
        self.stack_file.parent.mkdir(parents=True, exist_ok=True)
        self.stack_file.write_text(json.dumps(data, indent=2))


def stop_process_group(process: subprocess.Popen, timeout_s: float = 10.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout_s)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        process.wait(timeout=5)


def read_stack_file(state_dir: Path) -> dict | None:
    try:
        return json.loads((state_dir / "stack.json").read_text())
    except (OSError, ValueError):
        return None


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
