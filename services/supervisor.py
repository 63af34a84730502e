"""The local supervisor behind `dnsctl up`: runs the stack's services as child processes.

It starts each service from services/stack.py in order, waits for its health check, records the
children in the state directory (so `dnsctl down` and the race lab can find them), and stops
them all, in reverse order and by process group, so no child outlives it.

A service that dies is started again, as compose's `restart: unless-stopped` and ECS do, with
exponential backoff (`RestartPolicy`); each restart is a `service_restarted` event in the
supervisor's log and shows in the live view. Each service logs its JSON events to
logs/<name>.log, which it rotates by size itself (services/logs.py); anything else it prints
(a traceback as it dies) goes to logs/<name>.out.
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

from services.logs import LOG_FILE_ENV
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


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff between restarts of a crashed service: initial, doubling, capped; a service that
    ran `stable_after_s` before it died starts again from the initial delay."""

    initial_s: float = 1.0
    max_s: float = 30.0
    stable_after_s: float = 60.0

    def delay(self, restarts_in_a_row: int) -> float:
        return min(self.max_s, self.initial_s * (2 ** max(0, restarts_in_a_row)))


@dataclass
class Child:
    spec: ServiceSpec
    process: subprocess.Popen
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0  # how many times the supervisor started it again
    crashes_in_a_row: int = 0
    restart_at: float | None = None  # when a crashed child is due to start again
    last_exit: int | None = None

    def url(self, host: str) -> str:
        return f"http://{host}:{self.spec.port}"

    @property
    def out_path(self) -> Path:
        return self.log_path.with_suffix(".out")


@dataclass
class Supervisor:
    """Owns the children of one `dnsctl up`."""

    host: str
    state_dir: Path
    base_env: dict[str, str]
    children: list[Child] = field(default_factory=list)
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    def _spawn(self, spec: ServiceSpec) -> tuple[subprocess.Popen, Path]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}.log"
        env = {**os.environ, **self.base_env, **spec.env, "PYTHONUNBUFFERED": "1", LOG_FILE_ENV: str(log_path)}
        with open(log_path.with_suffix(".out"), "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", *spec.args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, so a stop reaches its children too
            )
        return process, log_path

    def start(self, spec: ServiceSpec, health_timeout_s: float = 60.0) -> Child:
        process, log_path = self._spawn(spec)
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
            raise ServiceFailed(f"{child.spec.name} did not finish in {timeout_s:.0f}s:\n{child_tail(child)}") from None
        if code != 0:
            raise ServiceFailed(f"{child.spec.name} failed with code {code}:\n{child_tail(child)}")

    def wait_healthy(self, child: Child, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise ServiceFailed(f"{child.spec.name} exited with code {child.process.returncode}:\n{child_tail(child)}")
            if self.is_healthy(child):
                return
            time.sleep(0.1)
        raise ServiceFailed(f"{child.spec.name} not healthy after {timeout_s:.0f}s:\n{child_tail(child)}")

    def is_healthy(self, child: Child) -> bool:
        if child.process.poll() is not None:
            return False
        if child.spec.health_path is None:
            return _dns_ready(self.host, child.spec.port)
        try:
            return httpx.get(child.url(self.host) + child.spec.health_path, timeout=3.0).status_code < 500
        except httpx.HTTPError:
            return False

    def restart_crashed(self, now: float | None = None) -> list[Child]:
        """Start again every child that died, once its backoff has passed; returns those started.

        Call it every second or so. A death is logged once (`service_exited`), each restart once
        (`service_restarted`, with the attempt and the backoff it waited)."""
        now = time.monotonic() if now is None else now
        restarted = []
        for child in self.children:
            code = child.process.poll()
            if code is None:
                continue
            if child.restart_at is None:
                ran_s = now - child.started_at
                if ran_s >= self.restart_policy.stable_after_s:
                    child.crashes_in_a_row = 0
                backoff = self.restart_policy.delay(child.crashes_in_a_row)
                child.crashes_in_a_row += 1
                child.last_exit = code
                child.restart_at = now + backoff
                supervisor_log().warning("service_exited", service=child.spec.name, code=code, pid=child.process.pid,
                                         ran_s=round(ran_s, 1), restart_in_s=backoff, log=str(child.log_path))
                continue
            if now < child.restart_at:
                continue
            old_pid = child.process.pid
            child.process, child.log_path = self._spawn(child.spec)
            child.started_at, child.restart_at = now, None
            child.restarts += 1
            supervisor_log().warning("service_restarted", service=child.spec.name, attempt=child.restarts,
                                     previous_pid=old_pid, pid=child.process.pid, previous_exit=child.last_exit)
            restarted.append(child)
        if restarted:
            self._write_stack_file()
        return restarted

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
                c.spec.name: {"pid": c.process.pid, "port": c.spec.port, "log": str(c.log_path), "args": list(c.spec.args),
                              "restarts": c.restarts}
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


def supervisor_log():
    from services.logs import get_logger

    return get_logger(component="supervisor")


def child_tail(child: Child, lines: int = 30) -> str:
    """The end of what a child printed outside its event log (a traceback), then of its events."""
    out = tail(child.out_path, lines) if child.out_path.exists() and child.out_path.stat().st_size else ""
    return (out + "\n" if out else "") + tail(child.log_path, lines)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
