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
"""

from __future__ import annotations

import argparse
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


def container_specs(ports: Ports = Ports()) -> list[ServiceSpec]:
    """The stack's services as they run in containers: all interfaces, every peer by its service name."""
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


def render(ports: Ports = Ports()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    specs = container_specs(ports)
    by_name = {spec.name: spec for spec in specs}
    for spec in specs:
        service: dict[str, Any] = {"build": ".", "image": IMAGE, "command": list(spec.args)}
        if spec.oneshot:
            service["restart"] = "no"
        else:
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


def render_text(ports: Ports = Ports()) -> str:
    return HEADER + yaml.safe_dump(render(ports), sort_keys=False, default_flow_style=False, width=200)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.compose_file", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docker-compose.yml is not what the stack table renders")
    parser.add_argument("--output", type=Path, default=COMPOSE_PATH)
    args = parser.parse_args(argv)
    text = render_text()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run `python -m services.compose_file`", file=sys.stderr)
            return 1
        print(f"{args.output} matches services/stack.py")
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
