"""docker-compose.yml is the `dnsctl up` stack in containers: one source of truth (services/stack.py).

The checked-in file must be exactly what `python -m services.compose_file` renders, and what it
renders must match what `dnsctl up` starts with its default options: names, commands, ports,
settings and dependencies, with only the container differences (bind address, peers by service
name, placeholder credentials, the token from the host, key files and logs in the project's
volumes, the `keys` one-shot that makes the signing pair) allowed.
"""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from services import compose_file, stack_file
from services.auth import TOKEN_ENV
from services.logs import LOG_FILE_ENV, LOG_STDOUT_ENV
from services.plan.keys import PRIVATE_KEY_FILE_ENV, PUBLIC_KEY_FILE_ENV
from services.stack import Ports, services
from services.stack_file import RUN_ID_ENV
from tests.processes import ROOT


def _up_default(name: str):
    from cli.up_cmd import up

    default = inspect.signature(up).parameters[name].default
    return getattr(default, "default", default)  # typer.Option(...) wraps the default


def _up_specs():
    """The specs `dnsctl up --cells 2 --accounts 6` starts (see cli/up_cmd.py): its defaults, with
    the cells and the cell map compose runs beside the regional system."""
    from cli.port_flags import cell_ports_from_flags

    ports = Ports(
        emulator=_up_default("emulator_port"),
        planner=_up_default("planner_port"),
        enactors=tuple(int(p) for p in _up_default("enactor_ports").split(",")),
        dns=_up_default("dns_port"),
        prober=_up_default("prober_port"),
        console=_up_default("console_port"),
        cells=cell_ports_from_flags(_up_default("host"), compose_file.COMPOSE_CELLS, _up_default("cell_port_base")),
    )
    host = _up_default("host")
    specs = services(
        ports,
        host=host,
        version_guard=_up_default("version_guard"),
        plan_interval_s=_up_default("plan_interval"),
        allow_chaos=_up_default("allow_chaos"),
        plan_keys=(Path("/state/plan-signing.key"), Path("/state/plan-signing.pub")),  # `dnsctl up` always signs
        accounts=compose_file.COMPOSE_ACCOUNTS,
    )
    return host, specs


KEY_ENV = (PRIVATE_KEY_FILE_ENV, PUBLIC_KEY_FILE_ENV)


def _container_extras(name: str) -> dict[str, str]:
    """The log settings a service has in compose beyond the stack's: its file in the `logs` volume
    and the run id its events carry (the console only reads the logs)."""
    extras: dict[str, str] = {}
    if name != "console":
        extras = {LOG_FILE_ENV: f"/var/lib/dnsctl/logs/{name}.log", LOG_STDOUT_ENV: "1", RUN_ID_ENV: compose_file.RUN_ID}
    return extras


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
    assert list(compose) == ["keys"] + [s.name for s in specs]  # the key pair first, as `dnsctl up` makes it first
    regional = {"keys", "emulator", "planner", "zones", "enactor-a", "enactor-b", "enactor-c", "dns", "prober", "console"}
    cells = {f"cell-{k}-{part}" for k in (1, 2) for part in ("planner", "zones", "enactor-a", "enactor-b", "enactor-c")}
    cellmap = {"cellmap-planner", "cellmap-zones", "cellmap-enactor-a", "cellmap-enactor-b", "cellmap-enactor-c", "resolver"}
    assert regional | cells | cellmap == set(compose)
    assert compose["cellmap-planner"]["command"][-4:] == ["--cells", "2", "--accounts", "6"]
    ports = {s.name: s.port for s in specs}

    def in_container(value: str) -> str:
        # The only differences allowed: bind to all interfaces, reach peers by service name.
        if value == host:
            return compose_file.BIND_HOST
        name, sep, url = value.partition("=")
        if sep and url.startswith("http://"):  # NAME=URL (the console's cell enactors and planners)
            return f"{name}={in_container(url)}"
        for name, port in ports.items():
            for local, container in ((f"http://{host}:{port}", f"http://{name}:{port}"), (f"{host}:{port}", f"{name}:{port}")):
                if value == local:
                    return container
        return value

    for spec in specs:
        service = compose[spec.name]
        extra_args = ["--log-dir", "/var/lib/dnsctl/logs"] if spec.name == "console" else []
        assert service["command"] == [in_container(a) for a in spec.args] + extra_args, spec.name
        env = {k: in_container(v) for k, v in spec.env.items() if k not in KEY_ENV}
        if "AWS_ENDPOINT_URL" in spec.env:
            env.update(compose_file.EMULATOR_CREDENTIALS)
            env[TOKEN_ENV] = compose_file.TOKEN_REQUIRED
        env.update(_container_extras(spec.name))
        environment = dict(service.get("environment", {}))
        # The same services read a key file as under `dnsctl up`; in compose it is in a volume.
        keys = {k: environment.pop(k) for k in KEY_ENV if k in environment}
        assert set(keys) == {k for k in KEY_ENV if k in spec.env}, spec.name
        assert environment == env, spec.name
        oneshots = {s.name for s in specs if s.oneshot}
        depends = list(spec.depends_on) if not keys else ["keys", *spec.depends_on]
        conditions = {
            d: {"condition": "service_completed_successfully" if d in oneshots | {"keys"} else "service_healthy"} for d in depends
        }
        assert service.get("depends_on", {}) == conditions, spec.name
        if spec.oneshot:
            # A bootstrap job: no port, no health check, never restarted.
            assert "ports" not in service and "healthcheck" not in service and service["restart"] == "no", spec.name
            continue
        protocols = ["udp", "tcp"] if spec.protocol == "udp+tcp" else ["tcp"]
        assert service["ports"] == [f"127.0.0.1:{spec.port}:{spec.port}/{p}" for p in protocols], spec.name
        probe = " ".join(service["healthcheck"]["test"])
        assert f"'127.0.0.1', {spec.port}" in probe, spec.name
        if spec.health_path is not None:
            assert f"'GET', '{spec.health_path}'" in probe, spec.name
        assert service["healthcheck"]["test"][:2] == ["CMD", "python3"], spec.name  # Debian's python3 (no `python`)
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
    assert oneshots == {"keys", "zones", "cell-1-zones", "cell-2-zones", "cellmap-zones"}
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
    return Ports(emulator=14566, planner=18080, enactors=(18081, 18082, 18083), dns=18053, prober=18090,
                 cells=((18100, 18101, 18102, 18103), (18110, 18111, 18112, 18113)), cellmap=(18094, 18095, 18096, 18097),
                 resolver=18054)


def test_host_network_variant_runs_what_dnsctl_up_runs_on_its_ports():
    ports = _host_network_ports()
    rendered = yaml.safe_load(compose_file.render_text(ports, host_network=True))
    users = _checked_in()
    local = services(ports, host="127.0.0.1", plan_keys=compose_file.PLAN_KEYS, accounts=compose_file.COMPOSE_ACCOUNTS)
    assert list(rendered["services"]) == ["keys"] + [s.name for s in local]
    assert rendered["volumes"] == users["volumes"]  # the same volumes as the users' file
    for spec in local:
        service = rendered["services"][spec.name]
        # Exactly `dnsctl up`'s commands: loopback, peers on loopback, the given ports.
        extra_args = ["--log-dir", "/var/lib/dnsctl/logs"] if spec.name == "console" else []
        assert service["command"] == list(spec.args) + extra_args, spec.name
        assert service["network_mode"] == "host", spec.name
        assert "ports" not in service and "build" not in service, spec.name  # nothing to publish; built beforehand
        env = dict(spec.env)
        if "AWS_ENDPOINT_URL" in spec.env:
            env.update(compose_file.EMULATOR_CREDENTIALS)
            env[TOKEN_ENV] = compose_file.TOKEN_REQUIRED
        env.update(_container_extras(spec.name))
        assert service.get("environment", {}) == env, spec.name
        assert service["volumes"] == users["services"][spec.name]["volumes"], spec.name
        if not spec.oneshot:
            assert str(spec.port) in " ".join(service["healthcheck"]["test"]), spec.name
    assert rendered["services"]["planner"]["environment"]["AWS_ENDPOINT_URL"] == "http://127.0.0.1:14566"


def test_host_network_variant_needs_its_own_output_and_describes_the_stack(tmp_path):
    base = [sys.executable, "-m", "services.compose_file"]
    refused = subprocess.run([*base, "--host-network"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "--output" in refused.stderr
    assert subprocess.run([*base, "--free-ports"], cwd=ROOT, capture_output=True, timeout=60).returncode != 0
    out, state = tmp_path / "compose.yml", tmp_path / "state"
    proc = subprocess.run([*base, "--host-network", "--free-ports", "--output", str(out), "--state-dir", str(state),
                           "--run-id", "e2e-1", "--owner-pid", str(os.getpid())], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rendered = yaml.safe_load(out.read_text())["services"]
    described = stack_file.read(state)
    assert described is not None and described.running  # owned by this process: `race --attach` takes it
    assert described.host == "127.0.0.1" and described.run_id == "e2e-1" and described.mode == "guarded"
    assert set(described.services) == {n for n, s in rendered.items() if s.get("restart") != "no"}
    assert described.log_dir == state.resolve() / "logs"
    assert described.emulator_url == f"http://127.0.0.1:{described.services['emulator']['port']}"
    assert described.dns == ("127.0.0.1", described.services["dns"]["port"])
    demo = {s.port for s in services(compose_file.COMPOSE_PORTS, accounts=compose_file.COMPOSE_ACCOUNTS)} - {0}
    assert len(described.services) == len({e["port"] for e in described.services.values()})  # no port twice
    for name, entry in described.services.items():
        assert entry["port"] not in demo, name  # a running demo is never in the way
        assert entry["args"] == rendered[name]["command"], name
        assert entry["log"] == str(state.resolve() / "logs" / f"{name}.log"), name  # the `logs` volume's files
        if name != "console":
            assert rendered[name]["environment"][LOG_FILE_ENV] == f"/var/lib/dnsctl/logs/{name}.log", name


# -- issue 13 item 3: plans are signed in compose too, the private key only where it is used -----


def _mounts(service: dict) -> dict[str, str]:
    """volume name -> "rw" or "ro" for a service's mounts."""
    out = {}
    for mount in service.get("volumes", []):
        name, _, rest = mount.partition(":")
        out[name] = "ro" if rest.endswith(":ro") else "rw"
    return out


PLANNERS = ("planner", "cell-1-planner", "cell-2-planner", "cellmap-planner")
ENACTOR_NAMES = tuple(f"{system}enactor-{x}" for system in ("", "cell-1-", "cell-2-", "cellmap-") for x in "abc")


def test_the_private_key_reaches_the_planners_only():
    """Every planner (the regional one, each cell's, the cell map's) signs with the one pair the
    `keys` one-shot makes; every enactor of every system verifies with its public half."""
    compose = _checked_in()["services"]
    holders = {name: _mounts(s)["plan-key"] for name, s in compose.items() if "plan-key" in _mounts(s)}
    assert holders == {"keys": "rw", **dict.fromkeys(PLANNERS, "ro")}
    readers = {name: _mounts(s)["plan-pub"] for name, s in compose.items() if "plan-pub" in _mounts(s)}
    assert readers == {"keys": "rw", **dict.fromkeys(ENACTOR_NAMES, "ro")}
    private_file = compose["planner"]["environment"][PRIVATE_KEY_FILE_ENV]
    assert private_file.startswith(str(compose_file.VOLUMES["plan-key"]) + "/")
    for name, service in compose.items():
        env = service.get("environment", {})
        assert (PRIVATE_KEY_FILE_ENV in env) == (name in PLANNERS), name
        assert (PUBLIC_KEY_FILE_ENV in env) == (name in ENACTOR_NAMES), name
        if name in PLANNERS:
            assert env[PRIVATE_KEY_FILE_ENV] == private_file, name
            assert compose[name]["depends_on"]["keys"] == {"condition": "service_completed_successfully"}
        if name in ENACTOR_NAMES:
            assert env[PUBLIC_KEY_FILE_ENV].startswith(str(compose_file.VOLUMES["plan-pub"]) + "/")
            assert compose[name]["depends_on"]["keys"] == {"condition": "service_completed_successfully"}
    keys = compose["keys"]
    assert keys["command"][:2] == ["keys", "init"] and keys["restart"] == "no"
    assert keys["command"][keys["command"].index("--private-dir") + 1] == str(compose_file.VOLUMES["plan-key"])
    assert keys["command"][keys["command"].index("--public-dir") + 1] == str(compose_file.VOLUMES["plan-pub"])
    assert compose["planner"]["depends_on"]["keys"] == {"condition": "service_completed_successfully"}
    text = compose_file.COMPOSE_PATH.read_text()
    assert "PRIVATE KEY" not in text and "BEGIN" not in text  # no key material in the repository


def test_the_console_follows_the_logs_the_services_write():
    compose = _checked_in()["services"]
    console = compose["console"]
    assert _mounts(console) == {"logs": "ro"}
    assert console["command"][console["command"].index("--log-dir") + 1] == str(compose_file.VOLUMES["logs"])
    assert LOG_FILE_ENV not in console.get("environment", {})
    writers = {name for name, s in compose.items() if _mounts(s).get("logs") == "rw"}
    assert writers == set(compose) - {"console", "keys"}
    for name in writers:
        env = compose[name]["environment"]
        assert env[LOG_FILE_ENV] == f"{compose_file.VOLUMES['logs']}/{name}.log", name
        assert env[RUN_ID_ENV] == "${DNSCTL_RUN_ID:-compose}", name
        # ... and to the container's stdout, for `docker compose logs`, which Docker rotates.
        assert env[LOG_STDOUT_ENV] == "1" and compose[name]["logging"]["options"]["max-size"], name


def test_keys_init_makes_the_pair_and_a_public_copy_and_keeps_them(tmp_path):
    from services.plan.signing import PlanSigner, PlanVerifier

    private_dir, public_dir = tmp_path / "plan-key", tmp_path / "plan-pub"
    run = [sys.executable, "-m", "cli.main", "keys", "init", "--private-dir", str(private_dir), "--public-dir", str(public_dir)]
    first = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    private, public = private_dir / "plan-signing.key", public_dir / "plan-signing.pub"
    assert private.stat().st_mode & 0o777 == 0o600
    assert public.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in public_dir.iterdir()) == ["plan-signing.pub"]  # never the private key
    signer = PlanSigner.from_file(private)
    assert PlanVerifier.from_file(public).key_id == signer.key_id
    assert signer.key_id in first.stdout
    public.write_text("damaged")  # the copy is made again from the private key, which is kept
    second = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert PlanSigner.from_file(private).key_id == signer.key_id
    assert PlanVerifier.from_file(public).key_id == signer.key_id


def test_keys_init_says_why_it_cannot_and_exits_2(tmp_path):
    private_dir = tmp_path / "plan-key"
    private_dir.mkdir()
    (private_dir / "plan-signing.key").write_text("not a key")
    run = [sys.executable, "-m", "cli.main", "keys", "init", "--private-dir", str(private_dir), "--public-dir", str(tmp_path / "pub")]
    proc = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "plan signing key" in proc.stderr and "not a PEM" in proc.stderr
    assert (private_dir / "plan-signing.key").read_text() == "not a key"  # bad input changes nothing
    assert not (tmp_path / "pub").exists()
