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
- each service has a health check run by the image's own Python (an HTTP GET of its health route,
  or a TCP connect for the DNS server, as the local supervisor checks it), and every dependency
  waits for `service_healthy`.

`--host-network` renders a second variant for machines whose Docker daemon has no bridge (CI
here: dockerd runs with --bridge=none, so containers have only the host's network): every
service runs with `network_mode: host`, binds the host's loopback and finds its peers there, on
the ports given (`--free-ports` picks free ones, so a running demo is never in the way), and
nothing is published or built (the image is built beforehand with `docker build --network host`).
`--stack-file` writes that stack's description (host, service ports) in the shape `dnsctl up`
writes to its state dir, so `dnsctl race --attach --state-dir DIR` can drive the containers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from services.auth import TOKEN_ENV
from services.stack import EMULATOR_CREDENTIALS, Ports, ServiceSpec, services

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_PATH = ROOT / "docker-compose.yml"
IMAGE = "dnsctl:local"
BIND_HOST = "0.0.0.0"
PUBLISH_HOST = "127.0.0.1"
TOKEN_REQUIRED = "${" + TOKEN_ENV + ":?set " + TOKEN_ENV + " to a long random string before docker compose up (see README)}"
HEADER = (
    "# Generated from services/stack.py by `python -m services.compose_file`; do not edit by hand.\n"
    "# tests/packaging/test_compose.py fails when this file and the stack table disagree.\n"
    f"# Start: export {TOKEN_ENV}=<long random string>; docker compose up --build\n"
)


def container_specs(ports: Ports = Ports(), host_network: bool = False) -> list[ServiceSpec]:
    """The stack's services as they run in containers: all interfaces, every peer by its service name.

    On the host's network, they run exactly as `dnsctl up` runs them: loopback, peers on loopback.
    """
    if host_network:
        return services(ports, host=PUBLISH_HOST)
    names = [spec.name for spec in services(ports)]
    return services(ports, host=BIND_HOST, emulator_host="emulator", service_host={name: name for name in names})


def container_env(spec: ServiceSpec) -> dict[str, str]:
    """A service's environment in its container: the stack's settings plus the container extras."""
    env = dict(spec.env)
    if "AWS_ENDPOINT_URL" in spec.env:
        env.update(EMULATOR_CREDENTIALS)
        env[TOKEN_ENV] = TOKEN_REQUIRED
    return env


def _published(spec: ServiceSpec) -> list[str]:
    protocols = ("udp", "tcp") if spec.protocol == "udp+tcp" else ("tcp",)
    return [f"{PUBLISH_HOST}:{spec.port}:{spec.port}/{p}" for p in protocols]


def _healthcheck(spec: ServiceSpec) -> dict[str, Any]:
    if spec.health_path is None:
        probe = f"import socket; socket.create_connection(('127.0.0.1', {spec.port}), timeout=2).close()"
    else:
        probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{spec.port}{spec.health_path}', timeout=2)"
    return {"test": ["CMD", "python", "-c", probe], "interval": "2s", "timeout": "3s", "retries": 30, "start_period": "5s"}


def _condition(dependency: ServiceSpec) -> str:
    return "service_completed_successfully" if dependency.oneshot else "service_healthy"


def render(ports: Ports = Ports(), host_network: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    specs = container_specs(ports, host_network)
    by_name = {spec.name: spec for spec in specs}
    for spec in specs:
        service: dict[str, Any] = {"image": IMAGE, "command": list(spec.args)}
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
        if not spec.oneshot:
            service["healthcheck"] = _healthcheck(spec)
        if spec.depends_on:
            service["depends_on"] = {dep: {"condition": _condition(by_name[dep])} for dep in spec.depends_on}
        out[spec.name] = service
    return {"services": out}


def render_text(ports: Ports = Ports(), host_network: bool = False) -> str:
    header = HEADER
    if host_network:
        header = (
            "# Generated by `python -m services.compose_file --host-network` for a Docker daemon without a bridge;\n"
            "# the checked-in docker-compose.yml is the one for users.\n"
        )
    return header + yaml.safe_dump(render(ports, host_network), sort_keys=False, default_flow_style=False, width=200)


def stack_description(ports: Ports, state_dir: Path) -> dict[str, Any]:
    """The host-network stack as `dnsctl up` describes its own in <state dir>/stack.json; the logs
    are where `dnsctl up` keeps them (whoever runs the containers copies their output there)."""
    return {
        "host": PUBLISH_HOST,
        "services": {
            spec.name: {"port": spec.port, "args": list(spec.args), "log": str(state_dir / "logs" / f"{spec.name}.log")}
            for spec in services(ports, host=PUBLISH_HOST)
            if not spec.oneshot
        },
    }


def free_ports() -> Ports:
    """Ports free on the loopback now, one per service (UDP and TCP for the DNS server)."""
    from services.supervisor import free_port  # the supervisor's picker: one way to find a free port

    return Ports(
        emulator=free_port(PUBLISH_HOST),
        planner=free_port(PUBLISH_HOST),
        enactors=tuple(free_port(PUBLISH_HOST) for _ in Ports().enactors),
        dns=free_port(PUBLISH_HOST, "udp+tcp"),
        prober=free_port(PUBLISH_HOST),
        console=free_port(PUBLISH_HOST),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.compose_file", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docker-compose.yml is not what the stack table renders")
    parser.add_argument("--output", type=Path, default=COMPOSE_PATH)
    parser.add_argument("--host-network", action="store_true", help="render the variant for a daemon without a bridge (network_mode: host)")
    parser.add_argument("--free-ports", action="store_true", help="with --host-network: free loopback ports instead of the demo's")
    parser.add_argument("--stack-file", type=Path, help="with --host-network: also write the stack's description (stack.json) here")
    args = parser.parse_args(argv)
    if (args.free_ports or args.stack_file) and not args.host_network:
        parser.error("--free-ports and --stack-file go with --host-network")
    if args.host_network and args.output == COMPOSE_PATH:
        parser.error("--host-network needs --output: docker-compose.yml is the users' file")
    ports = free_ports() if args.free_ports else Ports()
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
    if args.stack_file:
        args.stack_file.parent.mkdir(parents=True, exist_ok=True)
        args.stack_file.write_text(json.dumps(stack_description(ports, args.stack_file.parent.resolve()), indent=2))
        print(f"wrote {args.stack_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
