"""Every HTTP service is built by services/web.py: body limit before parsing and before auth,
401 for a malformed Authorization, 422 for NaN/Infinity, header and idle timeouts, offline docs,
/healthz and /readyz split. One planner, one enactor and one prober process for the module.
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.processes import ManagedProcess, free_port

TOKEN = "web-test-token"
HEADER_TIMEOUT_S = 1.5


class Service:
    def __init__(self, name: str, process: ManagedProcess, port: int):
        self.name, self.process, self.port = name, process, port
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def services(emulator, tmp_path_factory) -> Iterator[dict[str, Service]]:
    log_dir = tmp_path_factory.mktemp("web")
    env = {
        **emulator.env(),
        "DNSCTL_BUCKET": f"web-{uuid.uuid4().hex[:10]}",
        "DNSCTL_API_TOKEN": TOKEN,
        "DNSCTL_STATE_DIR": str(log_dir / "state"),
        "DNSCTL_HTTP_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "DNSCTL_HTTP_KEEP_ALIVE_S": "1",
    }
    ports = {name: free_port() for name in ("planner", "enactor", "prober")}
    args = {
        "planner": ["planner", "--port", str(ports["planner"]), "--plan-interval", "3600"],
        "enactor": ["enactor", "--id", "enactor-web", "--port", str(ports["enactor"]), "--poll-interval", "5"],
        "prober": ["prober", "--port", str(ports["prober"]), "--dns", f"127.0.0.1:{free_port()}"],
    }
    running: dict[str, Service] = {}
    try:
        for name in ("planner", "enactor", "prober"):
            proc = ManagedProcess(f"{name}-web", args[name], env, log_dir)
            running[name] = Service(name, proc, ports[name])
        for svc in running.values():
            svc.process.wait_http(svc.url + "/healthz", timeout_s=40)
        yield running
    finally:
        for svc in running.values():
            svc.process.stop()


def mutating_routes(svc: Service) -> list[tuple[str, str]]:
    paths = httpx.get(svc.url + "/openapi.json").json()["paths"]
    out = []
    for path, ops in paths.items():
        for method in ops:
            if method in ("post", "put", "patch", "delete"):
                out.append((method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return out


@pytest.mark.parametrize("name", ["planner", "enactor", "prober"])
def test_root_redirects_to_docs_and_docs_load_only_local_assets(services, name):
    svc = services[name]
    r = httpx.get(svc.url + "/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/docs"
    for page in ("/docs", "/redoc"):
        html = httpx.get(svc.url + page).text
        refs = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(r"""url: ?['"]([^'"]+)['"]""", html)
        assert refs, html
        for ref in refs:
            assert not ref.startswith(("http://", "https://", "//")), f"{page} loads {ref} from outside"
            assert httpx.get(svc.url + ref).status_code == 200, ref


@pytest.mark.parametrize("name", ["planner", "enactor"])
def test_healthz_is_alive_and_readyz_checks_aws(services, name):
    svc = services[name]
    assert httpx.get(svc.url + "/healthz").json()["status"] == "ok"
    deadline = time.monotonic() + 15
    while (ready := httpx.get(svc.url + "/readyz")).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) == {"s3", "route53"}
    assert all(check["ok"] for check in ready.json()["checks"].values())


def test_prober_is_alive_but_not_ready_while_it_probes_nothing(services):
    svc = services["prober"]
    assert httpx.get(svc.url + "/healthz").json()["status"] == "ok"
    ready = httpx.get(svc.url + "/readyz")
    assert ready.status_code == 503, ready.text
    checks = ready.json()["checks"]
    assert checks["probing"]["ok"] is False and checks["probing"]["detail"], checks


@pytest.mark.parametrize("name", ["planner", "enactor", "prober"])
def test_declared_oversized_body_gets_413_before_auth(services, name):
    svc = services[name]
    method, path = mutating_routes(svc)[0]
    # No token, and a Content-Length far beyond the limit: refused without reading the body.
    with socket.create_connection(("127.0.0.1", svc.port), timeout=5) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {55 * 1024 * 1024}\r\n\r\n".encode())
        reply = s.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413"), reply


def test_chunked_body_without_length_is_counted_and_refused(services):
    svc = services["planner"]

    def chunks():
        for _ in range(40):
            yield b"x" * 65536  # 2.6 MB in all, never announced

    r = httpx.post(svc.url + "/v1/plans", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "body_too_large"
    # A body under the limit still reaches the route (and its token check).
    assert httpx.post(svc.url + "/v1/plans", json={"reason": "x" * 1000}).status_code == 401


@pytest.mark.parametrize("name", ["planner", "enactor", "prober"])
def test_non_ascii_authorization_gets_401_on_every_mutating_route(services, name):
    svc = services[name]
    routes = mutating_routes(svc)
    assert routes
    for method, path in routes:
        for header in ("Bearer tök€n".encode(), b"Bearer \xff\xfe", "Bëarer x".encode()):
            r = httpx.request(method, svc.url + path, headers={"Authorization": header}, json={})
            assert r.status_code in (401, 403), (method, path, r.status_code, r.text)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_json_get_422(services, constant):
    svc = services["planner"]
    with httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        body = f'{{"capacity": {constant}}}'
        r = http.patch("/v1/fleet/load-balancers/ddb-az1-a", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        assert constant in r.text
        # The same route with a real number is served.
        assert http.patch("/v1/fleet/load-balancers/ddb-az1-a", json={"capacity": 100}).status_code != 422


def _closed(s: socket.socket) -> bool:
    """True when the server closes the connection within the socket's timeout (any reply read first)."""
    try:
        while s.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_fifty_slow_loris_connections_are_closed_and_others_are_served(services):
    svc = services["planner"]
    socks = []
    try:
        for i in range(50):
            s = socket.create_connection(("127.0.0.1", svc.port), timeout=5)
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow-{i}: ".encode())  # headers never finish
            socks.append(s)
        idle = socket.create_connection(("127.0.0.1", svc.port), timeout=5)  # sends nothing at all
        socks.append(idle)
        # Keep trickling bytes: a keep-alive timer alone would be reset by each of them.
        started = time.monotonic()
        while time.monotonic() - started < HEADER_TIMEOUT_S + 2.0:
            assert httpx.get(svc.url + "/healthz", timeout=2).status_code == 200
            for s in socks[:-1]:
                try:
                    s.sendall(b"a")
                except OSError:
                    pass
            time.sleep(0.3)
        for s in socks:
            s.settimeout(3)
        still_open = [i for i, s in enumerate(socks) if not _closed(s)]
        assert still_open == [], f"{len(still_open)} of {len(socks)} slow connections still open"
    finally:
        for s in socks:
            s.close()


def test_idle_keep_alive_connection_is_closed(services):
    svc = services["planner"]
    with socket.create_connection(("127.0.0.1", svc.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        s.settimeout(HEADER_TIMEOUT_S + 3)
        started = time.monotonic()
        assert _closed(s)
        assert time.monotonic() - started < HEADER_TIMEOUT_S + 3
