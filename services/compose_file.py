"""Render docker-compose.yml from the stack table (services/stack.py).

`python -m services.compose_file` rewrites docker-compose.yml in the repository root;
`python -m services.compose_file --check` exits 1 when the checked-in file differs from what the
table renders. The compose stack is the `dnsctl up` stack in containers: the same services, the
same subcommands and flags, ports and settings. Only what containers need on top is added here,
and it is declared in one place (`container_env`):

- services bind 0.0.0.0 and find each other by service name (the emulator at `emulator`, the
  planner at `planner`, the DNS server at `dns`, ...);
- clients of the emulator get the same placeholder credentials `dnsctl up` gives its children
  (the emulator accepts any; real ones must never be sent to it) and the API token from the
  host's DNSCTL_API_TOKEN, which compose refuses to run without; nothing secret is in the image;
- published ports listen on the host's loopback only, as `dnsctl up` does by default;
- each service has a health check run by the image's own python3 (an HTTP GET of its health
  route, healthy below 500 as the local supervisor counts it, or a TCP connect for the DNS
  server), and every dependency waits for `service_healthy`;
- plans are signed as under `dnsctl up`: a one-shot `keys` service (`dnsctl keys init`) makes the
  key pair at `up` time, the private key in the `plan-key` volume that only it and the planner
  mount, a copy of the public key in the `plan-pub` volume the enactors mount read-only. An init
  service rather than `dnsctl` on the host before `docker compose up`: a plain `docker compose up`
  works alone, and the private key never touches the host's disk, the repository or the image;
  it lives as long as the project's volumes (`down -v` deletes it);
- the services write their JSON events to files as under `dnsctl up` (DNSCTL_LOG_FILE, one file
  per service), into the `logs` volume, which the console mounts read-only and follows for its
  timeline, as it follows `dnsctl up`'s log folder. Each event carries the run id DNSCTL_RUN_ID
  (default `compose`; set a new one per `up` to tell runs apart, `down -v` clears the logs).
  The same events also go to each container's stdout (DNSCTL_LOG_STDOUT=1), so `docker compose
  logs SERVICE` shows them; Docker keeps at most LOG_MAX_FILES files of LOG_MAX_SIZE of them per container.

`--host-network` renders a second variant for machines whose Docker daemon has no bridge (CI
here: dockerd runs with --bridge=none, so containers have only the host's network): every
service runs with `network_mode: host`, binds the host's loopback and finds its peers there, on
the ports given (`--free-ports` picks free ones, so a running demo is never in the way), and
nothing is published or built (the image is built beforehand with `docker build --network host`).
`--state-dir DIR` writes that stack's description (DIR/stack.json, in the shape `dnsctl up` writes),
so `dnsctl race --attach --state-dir DIR`, `status` and `timeline --stack` can drive and read the containers.

Both variants run the cells beside the regional system, as `dnsctl up --cells 2 --accounts 6` does:
COMPOSE_CELLS cells (each its planner, zones one-shot and enactor trio, cell-N-...) and the cell
map's planner, zones one-shot and enactors over COMPOSE_ACCOUNTS accounts, with the caching
resolver that follows the account names' CNAMEs; every one of them comes from the stack table.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from services import stack_file
from services.auth import TOKEN_ENV
from services.logs import LOG_FILE_ENV, LOG_STDOUT_ENV
from services.plan.keys import PRIVATE_KEY_FILE, PRIVATE_KEY_FILE_ENV, PUBLIC_KEY_FILE, PUBLIC_KEY_FILE_ENV
from services.stack import EMULATOR_CREDENTIALS, Ports, ServiceSpec, default_cell_ports, services
from services.stack_file import RUN_ID_ENV

ROOT = Path(__file__).resolve().parent.parent
# The cells compose runs (`dnsctl up --cells 2 --accounts 6`): enough to see one cell break alone
# while the other and the legacy accounts keep their answers, small enough for a laptop.
COMPOSE_CELLS = 2
COMPOSE_ACCOUNTS = 6
COMPOSE_PORTS = Ports(cells=default_cell_ports(COMPOSE_CELLS))
COMPOSE_PATH = ROOT / "docker-compose.yml"
IMAGE = "dnsctl:local"
BIND_HOST = "0.0.0.0"
PUBLISH_HOST = "127.0.0.1"
TOKEN_REQUIRED = "${" + TOKEN_ENV + ":?set " + TOKEN_ENV + " to a long random string before docker compose up (see README)}"
RUN_ID = "${" + RUN_ID_ENV + ":-compose}"
# The image's state directory (DNSCTL_STATE_DIR in the Dockerfile) and the project's volumes in it;
# the Dockerfile makes each mount point, owned by the image's user, so a new volume is writable.
STATE_DIR = Path("/var/lib/dnsctl")
VOLUMES = {"plan-key": STATE_DIR / "plan-key", "plan-pub": STATE_DIR / "plan-pub", "logs": STATE_DIR / "logs"}
PLAN_KEYS = (VOLUMES["plan-key"] / PRIVATE_KEY_FILE, VOLUMES["plan-pub"] / PUBLIC_KEY_FILE)
KEYS = ServiceSpec(
    "keys",
    ("keys", "init", "--private-dir", str(VOLUMES["plan-key"]), "--public-dir", str(VOLUMES["plan-pub"])),
    0,
    None,
    oneshot=True,
)
HEADER = (
    "# Generated from services/stack.py by `python -m services.compose_file`; do not edit by hand.\n"
    "# tests/packaging/test_compose.py fails when this file and the stack table disagree.\n"
    f"# Start: export {TOKEN_ENV}=<long random string>; docker compose up --build\n"
)


def container_specs(ports: Ports = COMPOSE_PORTS, host_network: bool = False) -> list[ServiceSpec]:
    """The stack's services as they run in containers: all interfaces, every peer by its service
    name, plans signed with the pair the `keys` one-shot makes first.

    On the host's network, they run exactly as `dnsctl up` runs them: loopback, peers on loopback.
    """
    if host_network:
        specs = services(ports, host=PUBLISH_HOST, plan_keys=PLAN_KEYS, accounts=COMPOSE_ACCOUNTS)
    else:
        names = [spec.name for spec in services(ports, accounts=COMPOSE_ACCOUNTS)]
        specs = services(ports, host=BIND_HOST, emulator_host="emulator", service_host={name: name for name in names},
                         plan_keys=PLAN_KEYS, accounts=COMPOSE_ACCOUNTS)
    signed = [replace(spec, depends_on=(KEYS.name, *spec.depends_on)) if _key_file(spec) else spec for spec in specs]
    return [KEYS, *signed]


# What Docker keeps of a container's stdout (the events, as DNSCTL_LOG_STDOUT sends them): rotated
# by size as the files in the `logs` volume are (services/logs.py), never a disk filled by a long run.
LOG_MAX_SIZE, LOG_MAX_FILES = "10m", "3"


def _logging() -> dict[str, Any]:
    # A fresh dict per service: one shared object would be written as a YAML anchor and aliases.
    return {"driver": "json-file", "options": {"max-size": LOG_MAX_SIZE, "max-file": LOG_MAX_FILES}}


def _key_file(spec: ServiceSpec) -> str | None:
    """The key file a service reads (the planner's private key, an enactor's public key), if any."""
    return spec.env.get(PRIVATE_KEY_FILE_ENV) or spec.env.get(PUBLIC_KEY_FILE_ENV)


def container_env(spec: ServiceSpec) -> dict[str, str]:
    """A service's environment in its container: the stack's settings plus the container extras."""
    env = dict(spec.env)
    if "AWS_ENDPOINT_URL" in spec.env:
        env.update(EMULATOR_CREDENTIALS)
        env[TOKEN_ENV] = TOKEN_REQUIRED
    if _writes_log(spec):
        env[LOG_FILE_ENV] = str(VOLUMES["logs"] / f"{spec.name}.log")
        env[LOG_STDOUT_ENV] = "1"
        env[RUN_ID_ENV] = RUN_ID
    return env


def _writes_log(spec: ServiceSpec) -> bool:
    # The console reads the logs (read-only); the key maker prints one line and logs no events.
    return spec.name not in ("console", KEYS.name)


def container_args(spec: ServiceSpec) -> list[str]:
    """A service's command in its container: the console follows the `logs` volume."""
    if spec.name == "console":
        return [*spec.args, "--log-dir", str(VOLUMES["logs"])]
    return list(spec.args)


def container_volumes(spec: ServiceSpec) -> list[str]:
    """What each service mounts: the private key only where it is made and used, the public key
    read-only for the enactors, the logs read-write for those who write them, read-only for the console."""
    mounts = []
    if spec.name == KEYS.name:
        mounts += [f"plan-key:{VOLUMES['plan-key']}", f"plan-pub:{VOLUMES['plan-pub']}"]
    elif spec.env.get(PRIVATE_KEY_FILE_ENV):
        mounts.append(f"plan-key:{VOLUMES['plan-key']}:ro")
    elif spec.env.get(PUBLIC_KEY_FILE_ENV):
        mounts.append(f"plan-pub:{VOLUMES['plan-pub']}:ro")
    if _writes_log(spec):
        mounts.append(f"logs:{VOLUMES['logs']}")
    elif spec.name == "console":
        mounts.append(f"logs:{VOLUMES['logs']}:ro")
    return mounts


def _published(spec: ServiceSpec) -> list[str]:
    protocols = ("udp", "tcp") if spec.protocol == "udp+tcp" else ("tcp",)
    return [f"{PUBLISH_HOST}:{spec.port}:{spec.port}/{p}" for p in protocols]


def _healthcheck(spec: ServiceSpec) -> dict[str, Any]:
    # python3 -S: no site-packages to scan, so a probe every 2 s per service costs little CPU.
    if spec.health_path is None:
        probe = f"import socket; socket.create_connection(('127.0.0.1', {spec.port}), timeout=8).close()"
    else:
        probe = (f"import http.client, sys; c = http.client.HTTPConnection('127.0.0.1', {spec.port}, timeout=8); "
                 f"c.request('GET', '{spec.health_path}'); sys.exit(c.getresponse().status >= 500)")
    # start_period: on a busy machine a service can take a minute to import and start; probes
    # that fail before then do not count (the first that passes counts at once).
    # Every probe is a `docker exec` (a runc process and a python3): with the cells, 23 services
    # probing every 2 s are 11 of them a second. In the first compose run with the cells (2 cores,
    # load 50+ with other jobs) every HTTP probe overran a 3 s timeout and the stack never counted
    # as healthy. One probe per 5 s per service, 10 s to answer; unhealthy after 6 failures in a row.
    return {"test": ["CMD", "python3", "-S", "-c", probe], "interval": "5s", "timeout": "10s", "retries": 6, "start_period": "120s"}


def _condition(dependency: ServiceSpec) -> str:
    return "service_completed_successfully" if dependency.oneshot else "service_healthy"


def render(ports: Ports = COMPOSE_PORTS, host_network: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    specs = container_specs(ports, host_network)
    by_name = {spec.name: spec for spec in specs}
    for spec in specs:
        service: dict[str, Any] = {"image": IMAGE, "command": container_args(spec)}
        if host_network:
            service["network_mode"] = "host"
        else:
            service = {"build": ".", **service}
        if spec.oneshot:
            service["restart"] = "no"
        elif not host_network:
            service["ports"] = _published(spec)
        env = container_env(spec)
        if env:
            service["environment"] = env
        service["volumes"] = container_volumes(spec)
        if not spec.oneshot:
            service["healthcheck"] = _healthcheck(spec)
        service["logging"] = _logging()
        if spec.depends_on:
            service["depends_on"] = {dep: {"condition": _condition(by_name[dep])} for dep in spec.depends_on}
        out[spec.name] = service
    return {"services": out, "volumes": {name: {} for name in VOLUMES}}


def render_text(ports: Ports = COMPOSE_PORTS, host_network: bool = False) -> str:
    header = HEADER
    if host_network:
        header = (
            "# Generated by `python -m services.compose_file --host-network` for a Docker daemon without a bridge;\n"
            "# the checked-in docker-compose.yml is the one for users.\n"
        )
    return header + yaml.safe_dump(render(ports, host_network), sort_keys=False, default_flow_style=False, width=200)


def stack_description(ports: Ports, state_dir: Path, *, run_id: str = "compose", owner_pid: int | None = None) -> dict[str, Any]:
    """The host-network stack as `dnsctl up` describes its own in <state dir>/stack.json, so every
    command (`status`, `race --attach`, `timeline --stack`) finds it. Its logs are the `logs`
    volume's files, under <state dir>/logs: whoever runs the containers makes that folder show
    the volume (.ci/compose-e2e.sh links it to the volume's mount point). `owner_pid` is the
    process that owns the containers (the e2e script): the stack counts as running while it runs.
    """
    logs = state_dir / "logs"
    return {
        "supervisor_pid": owner_pid,
        "started_by": "compose",
        "run_id": run_id,
        "host": PUBLISH_HOST,
        "state_dir": str(state_dir),
        "log_dir": str(logs),
        "mode": "guarded",  # the stack table's default, which both compose files run
        "aws_env": {**EMULATOR_CREDENTIALS, "AWS_ENDPOINT_URL": f"http://{PUBLISH_HOST}:{ports.emulator}"},
        "services": {
            spec.name: {
                "port": spec.port,
                "protocol": spec.protocol,
                "args": container_args(spec),
                "log": str(logs / f"{spec.name}.log"),
                **({"url": f"http://{PUBLISH_HOST}:{spec.port}"} if spec.protocol == "tcp" else {}),
            }
            for spec in container_specs(ports, host_network=True)
            if not spec.oneshot
        },
    }


def free_ports() -> Ports:
    """Ports free on the loopback now, one per service (UDP and TCP for the DNS server and the
    resolver), no two the same."""
    from services.supervisor import free_port  # the supervisor's picker: one way to find a free port

    taken: set[int] = set()

    def pick(protocol: str = "tcp") -> int:
        while (port := free_port(PUBLISH_HOST, protocol)) in taken:
            pass
        taken.add(port)
        return port

    def four() -> tuple[int, int, int, int]:
        return (pick(), pick(), pick(), pick())

    return Ports(
        emulator=pick(),
        planner=pick(),
        enactors=tuple(pick() for _ in Ports().enactors),
        dns=pick("udp+tcp"),
        prober=pick(),
        console=pick(),
        cells=tuple(four() for _ in COMPOSE_PORTS.cells),
        cellmap=four(),
        resolver=pick("udp+tcp"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.compose_file", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docker-compose.yml is not what the stack table renders")
    parser.add_argument("--output", type=Path, default=COMPOSE_PATH)
    parser.add_argument("--host-network", action="store_true", help="render the variant for a daemon without a bridge (network_mode: host)")
    parser.add_argument("--free-ports", action="store_true", help="with --host-network: free loopback ports instead of the demo's")
    parser.add_argument("--state-dir", type=Path, help="with --host-network: also describe the stack in DIR/stack.json, as `dnsctl up` does")
    parser.add_argument("--run-id", default="compose", help="with --state-dir: the run id the services log with (DNSCTL_RUN_ID)")
    parser.add_argument("--owner-pid", type=int, help="with --state-dir: the process that owns the containers (the stack runs while it does)")
    args = parser.parse_args(argv)
    if (args.free_ports or args.state_dir) and not args.host_network:
        parser.error("--free-ports and --state-dir go with --host-network")
    if args.host_network and args.output == COMPOSE_PATH:
        parser.error("--host-network needs --output: docker-compose.yml is the users' file")
    ports = free_ports() if args.free_ports else COMPOSE_PORTS
    text = render_text(ports, args.host_network)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run `python -m services.compose_file`", file=sys.stderr)
            return 1
        print(f"{args.output} matches services/stack.py")
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    if args.state_dir:
        where = args.state_dir.resolve()
        stack_file.write(where, stack_description(ports, where, run_id=args.run_id, owner_pid=args.owner_pid))
        print(f"wrote {where / stack_file.FILE_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
