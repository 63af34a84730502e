"""The local supervisor behind `dnsctl up`: runs the stack's services as child processes.

It starts the services from services/stack.py, each as soon as the services it depends on are
healthy (independent ones in parallel), waits for its health check, describes the stack in the
state directory (services/stack_file.py: so `dnsctl down`, `dnsctl status`, the race lab and
every other command find it), and stops them all, in reverse order and by process group, so no
child outlives it. Each run logs into a folder of its own, <state dir>/logs/<run id>/, so two
runs' logs are never read as one story.

A service that dies is started again, as compose's `restart: unless-stopped` and ECS do, with
exponential backoff (`RestartPolicy`); each restart is a `service_restarted` event in the
supervisor's log and shows in the live view. Each service logs its JSON events to
logs/<run id>/<name>.log, which it rotates by size itself (services/logs.py); anything else it prints
(a traceback as it dies) goes to logs/<run id>/<name>.out.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services import stack_file
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


PICK_FROM = 10000  # free ports are picked from here up to the kernel's ephemeral range (the demo's are below)
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port(host: str, protocol: str = "tcp") -> int:
    """A port free now on `host` (both UDP and TCP for the DNS server).

    Picked at random below the kernel's ephemeral range, not with bind(0): the kernel hands ports
    of that range to every outgoing connection and every other program's bind(0), so one picked
    there can be taken between this pick and the child's own bind (a whole stack starts over
    seconds; tests run side by side). Then the child exits and another program answers on its
    port (the supervisor's health check tells them apart by pid)."""
    low = _ephemeral_low()
    rng = random.SystemRandom()
    for _ in range(200):
        if low - PICK_FROM > 1000:
            port = rng.randrange(PICK_FROM, low)
        else:  # an unusual ephemeral range: the kernel's pick
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        if port_free(host, port, protocol):
            return port
    raise PortInUse(f"no free {protocol} port on {host}")


def port_holder(port: int, protocol: str = "tcp") -> str | None:
    """Who holds `port` on this host, in words ("pid 4242 (python3 -m cli.main planner ...)"), or
    None when no process of ours can be seen holding it (another user's, or a socket in TIME-WAIT)."""
    import psutil

    kinds = {"tcp": ("tcp",), "udp+tcp": ("tcp", "udp")}.get(protocol, ("tcp",))
    pids: list[int] = []
    for kind in kinds:
        try:
            conns = psutil.net_connections(kind=kind)
        except (psutil.AccessDenied, OSError):
            continue
        pids += [c.pid for c in conns if c.laddr and c.laddr.port == port and c.pid
                 and (kind == "udp" or c.status == psutil.CONN_LISTEN)]
    for pid in dict.fromkeys(pids):
        try:
            cmd = " ".join(psutil.Process(pid).cmdline())[:80]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            cmd = "?"
        return f"pid {pid} ({cmd})"
    return None


def check_ports(specs: list[ServiceSpec], host: str) -> None:
    taken = [s for s in specs if not s.oneshot and not port_free(host, s.port, s.protocol)]
    if taken:
        parts = []
        for s in taken:
            holder = port_holder(s.port, s.protocol)
            parts.append(f"{s.name} needs {host}:{s.port}, held by {holder or 'a process this user cannot see'}")
        raise PortInUse(
            f"port in use: {'; '.join(parts)}. Stop whatever holds it (`dnsctl down` if it is an earlier stack) "
            "or choose other ports (see `dnsctl up --help`; 0 picks a free port)."
        )


def _dns_ready(host: str, port: int) -> bool:
    """The DNS server is ready when it answers a query over UDP (any answer: REFUSED for a name it
    does not serve is an answer). UDP, not a TCP connect: the live view asks every second, and a
    TCP connect per check would leave a socket in TIME-WAIT each time."""
    import dns.exception
    import dns.message
    import dns.query

    try:
        dns.query.udp(dns.message.make_query(".", "SOA"), host, port=port, timeout=0.5)
        return True
    except (dns.exception.DNSException, OSError):
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
    run_id: str = field(default_factory=stack_file.new_run_id)
    # What the stack description says beyond the children: mode, ports, the emulator's AWS settings.
    description: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # children and stack.json, under parallel starts
    _client: Any = field(default=None, repr=False)
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs" / self.run_id

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    def _spawn(self, spec: ServiceSpec) -> tuple[subprocess.Popen, Path]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}.log"
        env = {**os.environ, **self.base_env, **spec.env, "PYTHONUNBUFFERED": "1", stack_file.RUN_ID_ENV: self.run_id,
               LOG_FILE_ENV: str(log_path)}
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
        with self._lock:
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
        import httpx

        try:
            reply = self._http().get(child.url(self.host) + child.spec.health_path, timeout=1.0)
        except httpx.HTTPError:
            return False
        if reply.status_code >= 500 or reply.status_code == 404:
            return False  # (404: no such health route, so not the service it should be)
        # Our services' /healthz names their pid: a reply from another process means another
        # program took the port between the free-port pick and the child's bind (tests run side
        # by side): not this child, which will exit on the taken port (wait_healthy says so).
        try:
            pid = reply.json().get("pid") if reply.headers.get("content-type", "").startswith("application/json") else None
        except (ValueError, AttributeError):
            pid = None
        return pid is None or pid == child.process.pid

    def _http(self):
        """One keep-alive client for every health check (the live view checks each service every
        second: a connection per check would leave one socket in TIME-WAIT each time)."""
        with self._lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client()
            return self._client

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
            with self._lock:
                self._write_stack_file()
        return restarted

    def stop_all(self, timeout_s: float = 10.0, on_stop: Callable[[str], None] | None = None) -> None:
        """Stop every child, whatever `on_stop` does: a report that fails (the terminal or the pipe
        it writes to is gone: rich raises SystemExit on a broken pipe) is raised only once every
        child is stopped, or the rest would be orphaned."""
        failure: BaseException | None = None
        for child in reversed(self.children):
            stop_process_group(child.process, timeout_s)
            if on_stop and failure is None:
                try:
                    on_stop(child.spec.name)
                except BaseException as exc:  # noqa: BLE001 - re-raised below, after the last child
                    failure = exc
        self.children.clear()
        stack_file.remove(self.state_dir)
        if failure is not None:
            raise failure

    def _write_stack_file(self) -> None:
        data = {
            "supervisor_pid": os.getpid(),
            "run_id": self.run_id,
            "host": self.host,
            "state_dir": str(self.state_dir),
            "log_dir": str(self.log_dir),
            **self.description,
            "services": {
                c.spec.name: {
                    "pid": c.process.pid,
                    "port": c.spec.port,
                    "protocol": c.spec.protocol,
                    "log": str(c.log_path),
                    "args": list(c.spec.args),
                    "restarts": c.restarts,
                    **({"url": c.url(self.host)} if c.spec.protocol == "tcp" else {}),
                }
                for c in list(self.children)
            },
        }
        stack_file.write(self.state_dir, data)

    def start_all(
        self,
        specs: list[ServiceSpec],
        on_started: Callable[[Child], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        health_timeout_s: float = 60.0,
    ) -> list[Child]:
        """Start every service as soon as all it depends on are up (or done, for a one-shot):
        independent services start in parallel, since a Python process takes seconds to start
        on a busy machine. The first failure stops the start-up and is raised; services already
        running stay in self.children for stop_all."""
        names = {s.name for s in specs}
        futures: dict[str, Future] = {}

        def run(spec: ServiceSpec) -> Child | None:
            for dep in spec.depends_on:
                if dep in names and futures[dep].result() is None:
                    return None  # a dependency did not start (stopping)
            if should_stop():
                return None
            child = self.start(spec, health_timeout_s)
            if on_started:
                on_started(child)
            return child

        with ThreadPoolExecutor(max_workers=max(1, len(specs)), thread_name_prefix="start") as pool:
            for spec in specs:  # services() lists dependencies first
                futures[spec.name] = pool.submit(run, spec)
            failure: BaseException | None = None
            for spec in specs:
                exc = futures[spec.name].exception()
                if exc is not None and failure is None:
                    failure = exc
            if failure is not None:
                raise failure
        return [c for s in specs if (c := futures[s.name].result()) is not None]


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
    stack = stack_file.read(state_dir)
    return stack.data if stack else None


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
