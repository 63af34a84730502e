"""The stack a race runs against: a private one on free ports, or the one `dnsctl up` runs.

A private stack is the `dnsctl up` stack (services/stack.py, started by services/supervisor.py)
on free ports in a state directory of its own, with the settings that make the October window
reachable in seconds (RACE_ENACTOR_ENV). Attaching reads the running stack's
<state dir>/stack.json instead and uses it as it is.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from services import auth
from services.stack import EMULATOR_CREDENTIALS, ENACTORS, Ports, ServiceSpec, services
from services.supervisor import Supervisor, port_free, read_stack_file

# Settings of a private race stack's enactors, and why:
# - keep_plans 2: the clean-up after a flip deletes every tree more than two plans older, so a
#   burst of a dozen plans leaves enactor-c's stale plan far below the threshold (on 20 October
#   the plans "significantly older" than 145 went; 110 was one of them);
# - backoff cap 1 s: a backing-off enactor is never asleep for long when the script needs it;
# - poll 0.2 s: a published plan is picked up within a fifth of a second.
RACE_ENACTOR_ENV = {
    "DNSCTL_ENACTOR_KEEP_PLANS": "2",
    "DNSCTL_ENACTOR_BACKOFF_CAP_S": "1.0",
    "DNSCTL_ENACTOR_POLL_INTERVAL": "0.2",
}
# The strict emulator does not throttle; the client-side pacing of 5 requests per second per
# process (Route 53's account limit, services/rate_limit.py) would only slow the replay down.
RACE_ROUTE53_ENV = {"DNSCTL_ROUTE53_RPS": "200"}
# The planner publishes only when the script says so (plan 1 at start, then bursts).
RACE_PLAN_INTERVAL_S = 3600.0


class StackError(RuntimeError):
    """The stack could not be started or found; the message says what to do."""


@dataclass
class RaceStack:
    host: str
    planner: str  # base URLs
    enactors: dict[str, str]
    prober: str
    dns: tuple[str, int]
    state_dir: Path
    logs: dict[str, Path] = field(default_factory=dict)
    supervisor: Supervisor | None = None  # None: attached to a stack someone else runs

    @property
    def private(self) -> bool:
        return self.supervisor is not None

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop_all()

    def stop_service(self, name: str) -> None:
        """Stop one service of a private stack (the repair tests stop every enactor)."""
        if self.supervisor is None:
            raise StackError("only a private stack's services can be stopped by the race lab")
        from services.supervisor import stop_process_group

        for child in self.supervisor.children:
            if child.spec.name == name:
                stop_process_group(child.process)


def free_port(host: str, protocol: str = "tcp") -> int:
    """A port free now on `host` (both UDP and TCP for the DNS server)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port_free(host, port, protocol):
            return port
    raise StackError(f"no free {protocol} port on {host}")


def _client_env(base_env: dict[str, str]) -> None:
    # This process is a client of the stack too (Route 53 reads, the chaos API): same settings.
    os.environ.update(base_env)
    os.environ.pop("AWS_PROFILE", None)


def start_private(state_dir: Path, *, version_guard: bool, host: str = "127.0.0.1") -> RaceStack:
    """Start emulator, planner, three enactors, DNS server and prober on free ports."""
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    os.environ["DNSCTL_STATE_DIR"] = str(state_dir)
    auth.ensure_token()  # the stack's own token (mode 600 in its state directory) unless DNSCTL_API_TOKEN is set
    ports = Ports(
        emulator=free_port(host),
        planner=free_port(host),
        enactors=tuple(free_port(host) for _ in ENACTORS),
        dns=free_port(host, "udp+tcp"),
        prober=free_port(host),
    )
    specs = services(ports, host=host, version_guard=version_guard, plan_interval_s=RACE_PLAN_INTERVAL_S, allow_chaos=True)
    # The race reads the stack itself; a private stack has no use for the web console.
    specs = [s for s in specs if s.name != "console"]
    for spec in specs:
        spec.env.update(RACE_ROUTE53_ENV)
        if spec.name.startswith("enactor-"):
            spec.env.update(RACE_ENACTOR_ENV)
    base_env = {
        "DNSCTL_STATE_DIR": str(state_dir),
        **EMULATOR_CREDENTIALS,
        "AWS_ENDPOINT_URL": f"http://{host}:{ports.emulator}",
        **RACE_ROUTE53_ENV,
    }
    _client_env(base_env)
    sup = Supervisor(host=host, state_dir=state_dir, base_env=base_env)
    stack = RaceStack(
        host=host,
        planner=f"http://{host}:{ports.planner}",
        enactors={name: f"http://{host}:{port}" for (name, _, _), port in zip(ENACTORS, ports.enactors, strict=True)},
        prober=f"http://{host}:{ports.prober}",
        dns=(host, ports.dns),
        state_dir=state_dir,
        supervisor=sup,
    )
    try:
        for level in _levels(specs):
            # Each level started at once: Python processes take seconds to start on a busy machine.
            with ThreadPoolExecutor(len(level)) as pool:
                for spec, child in zip(level, pool.map(sup.start, level), strict=True):
                    stack.logs[spec.name] = child.log_path
    except Exception:
        sup.stop_all()
        raise
    return stack


def _levels(specs: list[ServiceSpec]) -> list[list[ServiceSpec]]:
    """The services grouped by dependency depth: every service after all it depends on."""
    depth: dict[str, int] = {}
    for spec in specs:  # services() lists them in start order: dependencies first
        depth[spec.name] = 1 + max((depth.get(d, -1) for d in spec.depends_on), default=-1)
    return [[s for s in specs if depth[s.name] == k] for k in range(max(depth.values()) + 1)]


def attach(state_dir: Path) -> RaceStack:
    """The stack `dnsctl up --state-dir STATE_DIR` runs (its stack.json names ports and logs)."""
    state_dir = state_dir.resolve()
    data = read_stack_file(state_dir)
    if not data:
        raise StackError(f"no running stack in {state_dir} (no stack.json): start one with `dnsctl up`, or drop --attach")
    host = data.get("host", "127.0.0.1")
    svc: dict[str, dict] = data.get("services", {})
    missing = [n for n in ("planner", "dns", "prober", *(e for e, _, _ in ENACTORS)) if n not in svc]
    if missing:
        raise StackError(f"the stack in {state_dir} has no {', '.join(missing)}; the race needs the whole `dnsctl up` stack")
    os.environ["DNSCTL_STATE_DIR"] = str(state_dir)
    if "emulator" in svc:
        _client_env({**EMULATOR_CREDENTIALS, "AWS_ENDPOINT_URL": f"http://{host}:{svc['emulator']['port']}"})

    def url(name: str) -> str:
        return f"http://{host}:{svc[name]['port']}"

    return RaceStack(
        host=host,
        planner=url("planner"),
        enactors={name: url(name) for name, _, _ in ENACTORS},
        prober=url("prober"),
        dns=(host, int(svc["dns"]["port"])),
        state_dir=state_dir,
        logs={name: Path(s["log"]) for name, s in svc.items() if s.get("log")},
    )
