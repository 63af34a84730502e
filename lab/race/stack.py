"""The stack a race runs against: a private one on free ports, or the one `dnsctl up` runs.

A private stack is the `dnsctl up` stack (services/stack.py, started by services/supervisor.py)
on free ports in a state directory of its own, with the settings that make the October window
reachable in seconds (RACE_ENACTOR_ENV). Attaching reads the running stack's
<state dir>/stack.json instead and uses it as it is.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services import auth, stack_file
from services.stack import DEFAULT_BUCKET, DEFAULT_REGION, EMULATOR_CREDENTIALS, ENACTORS, Ports, services
from services.supervisor import Child, PortInUse, Supervisor, check_ports, free_port

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
    """The services a race drives. With `cell`, planner and enactors are that cell's (under the
    short names enactor-a, -b, -c the script uses), so the same script breaks only that cell."""

    host: str
    planner: str  # base URLs
    enactors: dict[str, str]
    prober: str
    dns: tuple[str, int]
    state_dir: Path
    logs: dict[str, Path] = field(default_factory=dict)
    supervisor: Supervisor | None = None  # None: attached to a stack someone else runs
    attached_log_dir: Path | None = None  # an attached stack's run folder (from its description)
    cell: str | None = None
    cellmap: str | None = None  # the cell map planner's base URL (a stack with accounts)
    console: str | None = None  # the web console's base URL, when the stack runs one

    @property
    def log_dir(self) -> Path:
        """Where this run's logs go (the race's own log too): the stack's per-run folder."""
        if self.supervisor is not None:
            return self.supervisor.log_dir
        return self.attached_log_dir or self.state_dir / "logs"

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


def _client_env(base_env: dict[str, str]) -> None:
    # This process is a client of the stack too (Route 53 reads, the chaos API): same settings.
    os.environ.update(base_env)
    os.environ.pop("AWS_PROFILE", None)


def start_private(
    state_dir: Path,
    *,
    version_guard: bool,
    host: str = "127.0.0.1",
    ports: Ports | None = None,
    on_started: Callable[[Child], None] | None = None,
    on_planned: Callable[[list[str]], None] | None = None,
    cells: int = 0,
    accounts: int = 0,
    cell: str | None = None,
    plan_interval_s: float = RACE_PLAN_INTERVAL_S,
    enactor_env: dict[str, str] | None = None,
    route53_env: dict[str, str] | None = None,
    sign_plans: bool = False,
    console: bool = False,
) -> RaceStack:
    """Start emulator, planner, three enactors, DNS server and prober on `ports` (default: free
    ones), in parallel where their dependencies allow; `on_planned` hears every service's name
    before any starts (a progress display's list), `on_started` of each as it comes up.
    With `cells` (and `accounts`) the cells and the cell map start beside them (`dnsctl up --cells
    --accounts`), and `cell` names the one whose planner and enactors the race drives.

    The defaults are the race's settings; the soak (lab/soak/run.py) asks for `dnsctl up`'s instead:
    a scheduled plan every few seconds, the enactors' own settings (`enactor_env={}`, `route53_env={}`)
    and signed plans. Either way the emulator journals into <state_dir>/emulator, as `dnsctl up`'s
    does, so a kill -9 of it loses no acknowledged change. `console` keeps the web console (a kept
    stack's trace viewer); without it the stack has none."""
    enactor_env = RACE_ENACTOR_ENV if enactor_env is None else enactor_env
    route53_env = RACE_ROUTE53_ENV if route53_env is None else route53_env
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    os.environ["DNSCTL_STATE_DIR"] = str(state_dir)
    auth.ensure_token()  # the stack's own token (mode 600 in its state directory) unless DNSCTL_API_TOKEN is set
    if ports is None:
        ports = Ports(
            emulator=free_port(host),
            planner=free_port(host),
            enactors=tuple(free_port(host) for _ in ENACTORS),
            dns=free_port(host, "udp+tcp"),
            prober=free_port(host),
        )
    if cells:
        from dataclasses import replace

        ports = replace(ports, cells=tuple(tuple(free_port(host) for _ in range(4)) for _ in range(cells)),  # type: ignore[misc]
                        cellmap=tuple(free_port(host) for _ in range(4)), resolver=free_port(host, "udp+tcp"))  # type: ignore[arg-type]
    plan_keys = None
    if sign_plans:
        from services.plan.signing import generate_key_pair

        plan_keys = generate_key_pair(state_dir)
    specs = services(ports, host=host, version_guard=version_guard, plan_interval_s=plan_interval_s, allow_chaos=True,
                     accounts=accounts, plan_keys=plan_keys, emulator_data_dir=str(state_dir / "emulator"))
    # The race reads the stack itself; only a stack kept for a look around has use for the web console.
    specs = [s for s in specs if console or s.name != "console"]
    for spec in specs:
        spec.env.update(route53_env)
        if spec.args[0] == "enactor":  # the regional enactors and every cell's
            spec.env.update(enactor_env)
    base_env = {
        "DNSCTL_STATE_DIR": str(state_dir),
        **EMULATOR_CREDENTIALS,
        "AWS_ENDPOINT_URL": f"http://{host}:{ports.emulator}",
        **route53_env,
    }
    try:
        check_ports(specs, host)
    except PortInUse as exc:
        raise StackError(str(exc).replace("`dnsctl up --help`", "`dnsctl race --help`")) from exc
    _client_env(base_env)
    sup = Supervisor(host=host, state_dir=state_dir, base_env=base_env)
    os.environ[stack_file.RUN_ID_ENV] = sup.run_id  # the race's own log belongs to this run too
    aws_env = {**EMULATOR_CREDENTIALS, "AWS_ENDPOINT_URL": base_env["AWS_ENDPOINT_URL"]}
    sup.description = {
        "mode": "guarded" if version_guard else "legacy",
        "started_by": "race",
        "ports": {"emulator": ports.emulator, "planner": ports.planner, "enactors": list(ports.enactors),
                  "dns": ports.dns, "prober": ports.prober},
        "aws_env": aws_env,
        "settings": {"DNSCTL_BUCKET": DEFAULT_BUCKET, "DNSCTL_REGION": DEFAULT_REGION},
    }
    planner_port, enactor_ports = ports.planner, ports.enactors
    if cell is not None:
        from services.cells.naming import cell_number

        if not 1 <= cell_number(cell) <= cells:
            raise StackError(f"{cell} is not one of the stack's {cells} cells")
        planner_port, *rest = ports.cells[cell_number(cell) - 1]
        enactor_ports = tuple(rest)
    stack = RaceStack(
        host=host,
        planner=f"http://{host}:{planner_port}",
        enactors={name: f"http://{host}:{port}" for (name, _, _), port in zip(ENACTORS, enactor_ports, strict=True)},
        prober=f"http://{host}:{ports.prober}",
        dns=(host, ports.dns),
        state_dir=state_dir,
        supervisor=sup,
        cell=cell,
        cellmap=f"http://{host}:{ports.cellmap[0]}" if accounts else None,
        console=f"http://{host}:{ports.console}" if console else None,
    )
    driven = {"planner", *(name for name, _, _ in ENACTORS)}

    def started(child: Child) -> None:
        name = child.spec.name
        if cell is not None and name.startswith(f"{cell}-"):
            name = name.removeprefix(f"{cell}-")  # the driven cell's processes, by the script's names
        elif cell is not None and name in driven:
            name = f"regional-{name}"  # the regional system's, kept apart from the cell's
        stack.logs[name] = child.log_path
        if on_started:
            on_started(child)

    if on_planned:
        on_planned([spec.name for spec in specs])
    try:
        sup.start_all(specs, on_started=started)
    except Exception:
        sup.stop_all()
        raise
    return stack


def attach_or_start(attached: bool, state_dir: Path | None, *, start: Callable[[Path], RaceStack], temp_prefix: str, what: str,
                    say: Callable[[str], None], extra: str = "", cell: str | None = None) -> RaceStack:
    """The stack a lab run drives (`dnsctl race`, `dnsctl soak`): with `attached`, the one `dnsctl up`
    runs in `state_dir` (default .dnsctl; `cell` picks the cell the race drives), else a private
    one that `start` starts in `state_dir` (default: a new temp dir, named by `temp_prefix`) with
    the caller's settings. `say` hears which, in one line."""
    if attached:
        stack = attach(state_dir or Path(".dnsctl"), cell=cell)
        say(f"attached to the stack in {stack.state_dir}" + (f", racing in {cell}" if cell else ""))
        return stack
    where = (state_dir or Path(tempfile.mkdtemp(prefix=temp_prefix))).resolve()
    say(f"starting a private {what} in {where}{extra} ...")
    return start(where)


def attach(state_dir: Path, cell: str | None = None) -> RaceStack:
    """The stack `dnsctl up --state-dir STATE_DIR` runs (its stack.json names ports and logs); with
    `cell`, that cell's planner and enactors are the ones the race drives (`dnsctl up --cells N`),
    under the script's short names, as start_private names them."""
    state_dir = state_dir.resolve()
    described = stack_file.read(state_dir)
    if described is None:
        raise StackError(f"no running stack in {state_dir} (no stack.json): start one with `dnsctl up`, or drop --attach")
    if not described.running:
        raise StackError(f"the stack described in {described.path} is gone (pid {described.data.get('supervisor_pid')} is not running): "
                         "start one with `dnsctl up`, or drop --attach")
    host = described.host
    svc: dict[str, dict] = described.services
    missing = [n for n in ("planner", "dns", "prober", *(e for e, _, _ in ENACTORS)) if n not in svc]
    if missing:
        raise StackError(f"the stack in {state_dir} has no {', '.join(missing)}; the race needs the whole `dnsctl up` stack")
    driven = {"planner": "planner", **{name: name for name, _, _ in ENACTORS}}  # script name -> service name
    if cell is not None:
        from services.cells.naming import process_name

        cells = sorted({n.split("-planner")[0] for n in svc if n.startswith("cell-") and n.endswith("-planner")})
        driven = {short: process_name(cell, short) for short in driven}
        absent = [n for n in driven.values() if n not in svc]
        if absent:
            have = f"its cells are {', '.join(cells)}" if cells else "it runs no cells (`dnsctl up --cells N`)"
            raise StackError(f"the stack in {state_dir} has no {cell} ({', '.join(absent)} missing): {have}")
    os.environ["DNSCTL_STATE_DIR"] = str(state_dir)
    if described.run_id:
        os.environ[stack_file.RUN_ID_ENV] = described.run_id
    if "emulator" in svc:
        _client_env({**EMULATOR_CREDENTIALS, "AWS_ENDPOINT_URL": f"http://{host}:{svc['emulator']['port']}"})

    def url(name: str) -> str:
        return f"http://{host}:{svc[name]['port']}"

    # The driven processes' logs under the script's names; the regional system's, when a cell is
    # driven, kept apart under regional-<name> (as a private stack's are).
    service_of = {service: short for short, service in driven.items()}
    logs = {}
    for name, s in svc.items():
        if not s.get("log"):
            continue
        short = service_of.get(name) or (f"regional-{name}" if cell is not None and name in driven else name)
        logs[short] = Path(s["log"])
    return RaceStack(
        host=host,
        planner=url(driven["planner"]),
        enactors={name: url(driven[name]) for name, _, _ in ENACTORS},
        prober=url("prober"),
        dns=(host, int(svc["dns"]["port"])),
        state_dir=state_dir,
        logs=logs,
        attached_log_dir=described.log_dir,
        cell=cell,
        cellmap=url("cellmap-planner") if "cellmap-planner" in svc else None,
        console=url("console") if "console" in svc else None,
    )
