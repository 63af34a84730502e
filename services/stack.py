"""The local stack: which services exist, how each is started, on which port, with which settings.

This table is the single source of truth for `dnsctl up` (which runs the services as child
processes) and for docker-compose.yml (which runs them as containers); a test fails when the
two disagree. Every service is the `dnsctl` CLI with a subcommand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from services.cells.naming import CELL_ENV, accounts_zone, cell_names, process_name
from services.plan.keys import PRIVATE_KEY_FILE_ENV, PUBLIC_KEY_FILE_ENV

DEFAULT_BUCKET = "dnsctl-plans"
DEFAULT_REGION = "us-east-1"
# The emulator takes any credentials; these placeholders keep real ones from ever being sent to it.
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "dnsctl-local", "AWS_SECRET_ACCESS_KEY": "dnsctl-local", "AWS_DEFAULT_REGION": "us-east-1"}
ENACTORS = (("enactor-a", "use1-az1", 8081), ("enactor-b", "use1-az2", 8082), ("enactor-c", "use1-az4", 8083))
# Cells (`dnsctl up --cells N`): cell k's planner on CELL_PORT_BASE + 10 * (k - 1), its enactors on the next three.
CELL_PORT_BASE = 8100


# The cell map's planner and enactors (`dnsctl up --accounts N`).
CELLMAP_PORTS = (8094, 8095, 8096, 8097)


def default_cell_ports(count: int, base: int = CELL_PORT_BASE) -> tuple[tuple[int, int, int, int], ...]:
    """(planner, enactor-a, -b, -c) ports of cells 1..count."""
    return tuple(tuple(base + 10 * k + i for i in range(4)) for k in range(count))  # type: ignore[misc]


@dataclass(frozen=True)
class Ports:
    emulator: int = 4566
    planner: int = 8080
    enactors: tuple[int, ...] = tuple(p for _, _, p in ENACTORS)
    dns: int = 8053
    prober: int = 8090
    console: int = 8088
    # Per cell (cell-1 first): planner, enactor-a, -b, -c. Empty: no cells.
    cells: tuple[tuple[int, int, int, int], ...] = ()
    # The cell map's planner, enactor-a, -b, -c (used with accounts).
    cellmap: tuple[int, int, int, int] = CELLMAP_PORTS
    resolver: int = 8054  # a caching resolver in front of the DNS server (started with the cell map)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    args: tuple[str, ...]  # arguments after `dnsctl`
    port: int
    # The route `dnsctl up` and compose wait on: /readyz where S3 and Route 53 must answer first;
    # the prober's /healthz (its /readyz also needs endpoints to probe, which come later). None: not HTTP.
    health_path: str | None
    env: dict[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    protocol: str = "tcp"  # "udp+tcp" for the DNS server
    oneshot: bool = False  # runs to completion (exit 0) before its dependents start; no port, no health route


# The demo stack turns the planner's simulated traffic drift on (plans keep differing, as the
# talk's churn did); the planner itself has it off unless asked.
DEMO_DRIFT = 0.02


def services(
    ports: Ports = Ports(),
    *,
    host: str = "127.0.0.1",
    version_guard: bool = True,
    plan_interval_s: float = 5.0,
    allow_chaos: bool = True,
    drift: float = DEMO_DRIFT,
    emulator_host: str | None = None,
    service_host: dict[str, str] | None = None,
    plan_keys: tuple[Path, Path] | None = None,
    planner_args: tuple[str, ...] = (),
    emulator_data_dir: str | None = None,
    accounts: int = 0,
) -> list[ServiceSpec]:
    """The stack's services in start order.

    `emulator_host` and `service_host` let docker-compose name the other containers; locally
    everything is on `host`. `plan_keys` (private, public key file) make the planner sign every
    plan and the enactors apply only plans that verify; `planner_args` are extra planner flags
    (`--fleet-file F`, `--lbs N`). `emulator_data_dir` makes the emulator crash-safe (its journal and
    state file live there; `dnsctl up` puts it in its state dir).
    """
    emu = emulator_host or host
    peer = service_host or {}
    common = {"AWS_ENDPOINT_URL": f"http://{emu}:{ports.emulator}", "DNSCTL_BUCKET": DEFAULT_BUCKET, "DNSCTL_REGION": DEFAULT_REGION}
    specs = [
        ServiceSpec(
            "emulator",
            ("emulator", "--host", host, "--port", str(ports.emulator))
            + (("--data-dir", emulator_data_dir) if emulator_data_dir else ()),
            ports.emulator,
            "/moto-api/",
        ),
        ServiceSpec(
            "planner",
            ("planner", "--host", host, "--port", str(ports.planner), "--plan-interval", str(plan_interval_s))
            + (("--allow-chaos",) if allow_chaos else ())
            + (("--drift", str(drift)) if drift > 0 else ())
            + planner_args,
            ports.planner,
            "/readyz",  # ready: S3 and Route 53 answer (its dependents need both)
            env={**common, **({PRIVATE_KEY_FILE_ENV: str(plan_keys[0])} if plan_keys else {})},
            depends_on=("emulator",),
        ),
    ]
    # Bootstrap: the hosted zones of the fleet's endpoints must exist before any enactor works.
    # On AWS the CloudFormation stack creates them; locally this one-shot does, with the same code.
    specs.append(
        ServiceSpec(
            "zones",
            ("zones", "ensure", "--planner", f"http://{peer.get('planner', host)}:{ports.planner}"),
            0,
            None,
            env=dict(common),
            depends_on=("planner",),
            oneshot=True,
        )
    )
    for (name, az, _), port in zip(ENACTORS, ports.enactors, strict=True):
        args = ["enactor", "--id", name, "--az", az, "--host", host, "--port", str(port)]
        args.append("--version-guard" if version_guard else "--no-version-guard")
        if allow_chaos:
            args.append("--allow-chaos")
        env = {**common, **({PUBLIC_KEY_FILE_ENV: str(plan_keys[1])} if plan_keys else {})}
        specs.append(ServiceSpec(name, tuple(args), port, "/readyz", env=env, depends_on=("planner", "zones")))
    cell_enactors: list[tuple[str, int]] = []
    for cell, cell_ports in zip(cell_names(len(ports.cells)), ports.cells, strict=True):
        # A cell is the same planner, zones one-shot and enactor trio with DNSCTL_CELL set: every
        # name they use moves into the cell's namespace (services/cells/naming.py).
        cell_specs = cell_services(
            cell, cell_ports, host=host, common=common, peer=peer, version_guard=version_guard,
            plan_interval_s=plan_interval_s, allow_chaos=allow_chaos, drift=drift, plan_keys=plan_keys,
        )
        specs += cell_specs
        cell_enactors += [(s.name, s.port) for s in cell_specs if s.args[0] == "enactor"]
    if accounts:
        specs += cellmap_services(ports, accounts, host=host, common=common, peer=peer, plan_keys=plan_keys)
    specs.append(
        ServiceSpec(
            "dns",
            ("dns", "--host", host, "--port", str(ports.dns), "--refresh-ms", "250"),
            ports.dns,
            None,
            env=dict(common),
            depends_on=("emulator",),
            protocol="udp+tcp",
        )
    )
    dns_host = peer.get("dns", host)
    if accounts:
        # Account names are CNAMEs into the cells' zones: a resolver follows them as clients' do.
        specs.append(ServiceSpec(
            "resolver", ("dns", "--host", host, "--port", str(ports.resolver), "--cache", "--upstream", f"{dns_host}:{ports.dns}"),
            ports.resolver, None, env=dict(common), depends_on=("dns",), protocol="udp+tcp"))
    # The prober reads the planner (PlanLagHigh) and every enactor (EnactorStuck); it tolerates them being down.
    watched = ["--planner", f"http://{peer.get('planner', host)}:{ports.planner}"]
    for (name, _, _), port in zip(ENACTORS, ports.enactors, strict=True):
        watched += ["--enactor", f"http://{peer.get(name, host)}:{port}"]
    for name, port in cell_enactors:  # EnactorStuck for every cell's enactors too
        watched += ["--enactor", f"http://{peer.get(name, host)}:{port}"]
    specs.append(
        ServiceSpec(
            "prober",
            ("prober", "--host", host, "--port", str(ports.prober), "--dns", f"{dns_host}:{ports.dns}", *watched),
            ports.prober,
            "/healthz",
            env=dict(common),
            depends_on=("dns",),
        )
    )
    # The live web console reads what `dnsctl status` reads (Route 53, planner, enactors, prober,
    # DNS) and the stack's logs (DNSCTL_STATE_DIR/logs) for its timeline.
    console = ["--planner", f"http://{peer.get('planner', host)}:{ports.planner}", "--dns", f"{dns_host}:{ports.dns}",
               "--prober", f"http://{peer.get('prober', host)}:{ports.prober}"]
    for (name, _, _), port in zip(ENACTORS, ports.enactors, strict=True):
        console += ["--enactor", f"http://{peer.get(name, host)}:{port}"]
    cellmap_enactors = [(f"cellmap-{name}", port) for (name, _, _), port in zip(ENACTORS, ports.cellmap[1:], strict=True)] if accounts else []
    for name, port in cell_enactors + cellmap_enactors:  # named: the console groups them by system
        console += ["--enactor", f"{name}=http://{peer.get(name, host)}:{port}"]
    for cell, cell_ports in zip(cell_names(len(ports.cells)), ports.cells, strict=True):
        planner = process_name(cell, "planner")
        console += ["--cell-planner", f"{cell}=http://{peer.get(planner, host)}:{cell_ports[0]}"]
    if accounts:  # the accounts' zone is judged against the cell map planner's newest map
        console += ["--cellmap-planner", f"http://{peer.get('cellmap-planner', host)}:{ports.cellmap[0]}"]
    specs.append(
        ServiceSpec(
            "console",
            ("console", "--host", host, "--port", str(ports.console), *console),
            ports.console,
            "/healthz",
            env=dict(common),
            # After the zones exist: the console lists Route 53's zones every LIST_EVERY_S, and a
            # listing taken while `zones ensure` was still creating them hid an endpoint that long.
            depends_on=("prober", *(s.name for s in specs if s.oneshot and s.args[0] == "zones")),
        )
    )
    return specs


def cell_services(
    cell: str,
    ports: tuple[int, int, int, int],
    *,
    host: str,
    common: dict[str, str],
    peer: dict[str, str],
    version_guard: bool,
    plan_interval_s: float,
    allow_chaos: bool,
    drift: float,
    plan_keys: tuple[Path, Path] | None,
) -> list[ServiceSpec]:
    """One cell's own DNS management system: its planner, its zones one-shot, its three enactors."""
    env = {**common, CELL_ENV: cell}
    planner, zones = process_name(cell, "planner"), process_name(cell, "zones")
    specs = [
        ServiceSpec(
            planner,
            ("planner", "--cell", cell, "--host", host, "--port", str(ports[0]), "--plan-interval", str(plan_interval_s))
            + (("--allow-chaos",) if allow_chaos else ())
            + (("--drift", str(drift)) if drift > 0 else ()),
            ports[0],
            "/readyz",
            env={**env, **({PRIVATE_KEY_FILE_ENV: str(plan_keys[0])} if plan_keys else {})},
            depends_on=("emulator",),
        ),
        ServiceSpec(
            zones,
            ("zones", "ensure", "--planner", f"http://{peer.get(planner, host)}:{ports[0]}"),
            0,
            None,
            env=dict(env),
            depends_on=(planner,),
            oneshot=True,
        ),
    ]
    for (name, az, _), port in zip(ENACTORS, ports[1:], strict=True):
        enactor = process_name(cell, name)
        args = ["enactor", "--id", enactor, "--cell", cell, "--az", az, "--host", host, "--port", str(port),
                "--version-guard" if version_guard else "--no-version-guard"]
        if allow_chaos:
            args.append("--allow-chaos")
        specs.append(ServiceSpec(enactor, tuple(args), port, "/readyz",
                                 env={**env, **({PUBLIC_KEY_FILE_ENV: str(plan_keys[1])} if plan_keys else {})},
                                 depends_on=(planner, zones)))
    return specs


def cellmap_services(
    ports: Ports, accounts: int, *, host: str, common: dict[str, str], peer: dict[str, str], plan_keys: tuple[Path, Path] | None
) -> list[ServiceSpec]:
    """The cell map's own management: its planner (seeded with `accounts` over the stack's cells),
    the accounts' zone one-shot and its three enactors (services/cells/cellmap.py)."""
    planner_port, *enactor_ports = ports.cellmap
    specs = [
        ServiceSpec(
            "cellmap-planner",
            ("cells", "planner", "--host", host, "--port", str(planner_port), "--cells", str(len(ports.cells)),
             "--accounts", str(accounts)),
            planner_port,
            "/readyz",
            env={**common, **({PRIVATE_KEY_FILE_ENV: str(plan_keys[0])} if plan_keys else {})},
            depends_on=("emulator",),
        ),
        ServiceSpec("cellmap-zones", ("zones", "ensure", "--endpoint", accounts_zone(DEFAULT_REGION)), 0, None,
                    env=dict(common), depends_on=("emulator",), oneshot=True),
    ]
    for (name, az, _), port in zip(ENACTORS, enactor_ports, strict=True):
        enactor = f"cellmap-{name}"
        specs.append(ServiceSpec(enactor, ("cells", "enactor", "--id", enactor, "--az", az, "--host", host, "--port", str(port)),
                                 port, "/readyz", env={**common, **({PUBLIC_KEY_FILE_ENV: str(plan_keys[1])} if plan_keys else {})},
                                 depends_on=("cellmap-planner", "cellmap-zones")))
    return specs
