"""docker-compose.yml is the `dnsctl up` stack in containers: one source of truth (services/stack.py).

The checked-in file must be exactly what `python -m services.compose_file` renders, and what it
renders must match what `dnsctl up` starts with its default options: names, commands, ports,
settings and dependencies, with only the container differences (bind address, peers by service
name, placeholder credentials, the token from the host) allowed.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from services import compose_file
from services.auth import TOKEN_ENV
from services.stack import Ports, services
from tests.processes import ROOT


def _up_default(name: str):
    from cli.up_cmd import up

    default = inspect.signature(up).parameters[name].default
    return getattr(default, "default", default)  # typer.Option(...) wraps the default


def _up_specs():
    """The specs `dnsctl up` starts when run without options (see cli/up_cmd.py)."""
    ports = Ports(
        emulator=_up_default("emulator_port"),
        planner=_up_default("planner_port"),
        enactors=tuple(int(p) for p in _up_default("enactor_ports").split(",")),
        dns=_up_default("dns_port"),
        prober=_up_default("prober_port"),
        console=_up_default("console_port"),
    )
    host = _up_default("host")
    specs = services(
        ports,
        host=host,
        version_guard=_up_default("version_guard"),
        plan_interval_s=_up_default("plan_interval"),
        allow_chaos=_up_default("allow_chaos"),
    )
    return host, specs


def _checked_in() -> dict:
    return yaml.safe_load(compose_file.COMPOSE_PATH.read_text())


def test_checked_in_file_is_what_the_stack_renders():
    assert compose_file.COMPOSE_PATH.read_text() == compose_file.render_text(), (
        "docker-compose.yml is stale: run `python -m services.compose_file` and commit the result"
    )


def test_check_mode_reports_a_stale_file(tmp_path):
    stale = tmp_path / "docker-compose.yml"
    stale.write_text(compose_file.render_text().replace("8081", "9081"))
    run = [sys.executable, "-m", "services.compose_file", "--check", "--output", str(stale)]
    proc = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "stale" in proc.stderr
    subprocess.run([sys.executable, "-m", "services.compose_file", "--output", str(stale)], cwd=ROOT, check=True, timeout=60)
    assert subprocess.run(run, cwd=ROOT, timeout=60).returncode == 0


def test_compose_runs_the_same_services_as_dnsctl_up():
    host, specs = _up_specs()
    compose = _checked_in()["services"]
    assert list(compose) == [s.name for s in specs]
    assert {"emulator", "planner", "zones", "enactor-a", "enactor-b", "enactor-c", "dns", "prober", "console"} == set(compose)
    ports = {s.name: s.port for s in specs}

    def in_container(value: str) -> str:
        # The only differences allowed: bind to all interfaces, reach peers by service name.
        if value == host:
            return compose_file.BIND_HOST
        for name, port in ports.items():
            for local, container in ((f"http://{host}:{port}", f"http://{name}:{port}"), (f"{host}:{port}", f"{name}:{port}")):
                if value == local:
                    return container
        return value

    for spec in specs:
        service = compose[spec.name]
        assert service["command"] == [in_container(a) for a in spec.args], spec.name
        env = {k: in_container(v) for k, v in spec.env.items()}
        if "AWS_ENDPOINT_URL" in spec.env:
            env.update(compose_file.EMULATOR_CREDENTIALS)
            env[TOKEN_ENV] = compose_file.TOKEN_REQUIRED
        assert service.get("environment", {}) == env, spec.name
        oneshots = {s.name for s in specs if s.oneshot}
        conditions = {
            d: {"condition": "service_completed_successfully" if d in oneshots else "service_healthy"} for d in spec.depends_on
        }
        assert service.get("depends_on", {}) == conditions, spec.name
        if spec.oneshot:
            # A bootstrap job: no port, no health check, never restarted.
            assert "ports" not in service and "healthcheck" not in service and service["restart"] == "no", spec.name
            continue
        protocols = ["udp", "tcp"] if spec.protocol == "udp+tcp" else ["tcp"]
        assert service["ports"] == [f"127.0.0.1:{spec.port}:{spec.port}/{p}" for p in protocols], spec.name
        probe = " ".join(service["healthcheck"]["test"])
        target = f"'127.0.0.1', {spec.port}" if spec.health_path is None else f"http://127.0.0.1:{spec.port}{spec.health_path}"
        assert target in probe, spec.name
        assert service["image"] == compose_file.IMAGE and service["build"] == "."


def test_dns_port_is_published_on_udp_and_tcp():
    assert _checked_in()["services"]["dns"]["ports"] == ["127.0.0.1:8053:8053/udp", "127.0.0.1:8053:8053/tcp"]


def test_no_secret_is_written_into_the_file():
    text = compose_file.COMPOSE_PATH.read_text()
    for service in _checked_in()["services"].values():
        token = service.get("environment", {}).get(TOKEN_ENV)
        assert token in (None, compose_file.TOKEN_REQUIRED)
    assert compose_file.TOKEN_REQUIRED.startswith("${" + TOKEN_ENV + ":?")
    assert "AWS_SESSION_TOKEN" not in text and "AWS_PROFILE" not in text


DOCKER_COMPOSE = shutil.which("docker-compose")
needs_compose = pytest.mark.skipif(
    DOCKER_COMPOSE is None,
    reason="docker-compose binary not installed (Debian package docker-compose; .ci/run installs it)",
)


def _compose(args: list[str], token: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV and not k.startswith("COMPOSE_")}
    if token is not None:
        env[TOKEN_ENV] = token
    return subprocess.run(
        [DOCKER_COMPOSE, "-f", str(compose_file.COMPOSE_PATH), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@needs_compose
def test_docker_compose_config_accepts_the_file():
    proc = _compose(["config", "-q"], token="test-token-not-a-secret")
    assert proc.returncode == 0, proc.stderr


@needs_compose
def test_docker_compose_resolves_the_same_services_and_health_gates():
    proc = _compose(["config"], token="test-token-not-a-secret")
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)["services"]
    assert set(resolved) == set(_checked_in()["services"])
    assert resolved["planner"]["environment"][TOKEN_ENV] == "test-token-not-a-secret"
    oneshots = {name for name, service in resolved.items() if service.get("restart") == "no"}
    assert oneshots == {"zones"}
    for name, service in resolved.items():
        assert ("healthcheck" in service) == (name not in oneshots), name
        for dep_name, dep in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dep_name in oneshots else "service_healthy"
            assert dep["condition"] == expected, name


@needs_compose
def test_docker_compose_refuses_to_run_without_a_token():
    proc = _compose(["config", "-q"], token=None)
    assert proc.returncode != 0
    assert TOKEN_ENV in proc.stderr


# -- the host-network variant CI runs (.ci/compose-e2e.sh): a daemon without a bridge -----------


def _host_network_ports() -> Ports:
    return Ports(emulator=14566, planner=18080, enactors=(18081, 18082, 18083), dns=18053, prober=18090)


def test_host_network_variant_runs_what_dnsctl_up_runs_on_its_ports():
    ports = _host_network_ports()
    rendered = yaml.safe_load(compose_file.render_text(ports, host_network=True))["services"]
    local = services(ports, host="127.0.0.1")
    assert list(rendered) == [s.name for s in local]
    for spec in local:
        service = rendered[spec.name]
        # Exactly `dnsctl up`'s commands: loopback, peers on loopback, the given ports.
        assert service["command"] == list(spec.args), spec.name
        assert service["network_mode"] == "host", spec.name
        assert "ports" not in service and "build" not in service, spec.name  # nothing to publish; built beforehand
        env = dict(spec.env)
        if "AWS_ENDPOINT_URL" in spec.env:
            env.update(compose_file.EMULATOR_CREDENTIALS)
            env[TOKEN_ENV] = compose_file.TOKEN_REQUIRED
        assert service.get("environment", {}) == env, spec.name
        if not spec.oneshot:
            assert str(spec.port) in " ".join(service["healthcheck"]["test"]), spec.name
    assert rendered["planner"]["environment"]["AWS_ENDPOINT_URL"] == "http://127.0.0.1:14566"


def test_host_network_variant_needs_its_own_output_and_writes_the_stack_file(tmp_path):
    base = [sys.executable, "-m", "services.compose_file"]
    refused = subprocess.run([*base, "--host-network"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "--output" in refused.stderr
    assert subprocess.run([*base, "--free-ports"], cwd=ROOT, capture_output=True, timeout=60).returncode != 0
    out, stack = tmp_path / "compose.yml", tmp_path / "state" / "stack.json"
    proc = subprocess.run([*base, "--host-network", "--free-ports", "--output", str(out), "--stack-file", str(stack)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rendered = yaml.safe_load(out.read_text())["services"]
    described = json.loads(stack.read_text())
    assert described["host"] == "127.0.0.1"
    assert set(described["services"]) == {n for n, s in rendered.items() if s.get("restart") != "no"}
    demo = {s.port for s in services(Ports())}
    for name, entry in described["services"].items():
        assert entry["port"] not in demo, name  # a running demo is never in the way
        assert entry["args"] == rendered[name]["command"], name
        assert entry["log"] == str(stack.parent.resolve() / "logs" / f"{name}.log"), name  # where `dnsctl up` keeps logs
