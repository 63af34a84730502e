"""The chaos routes refuse without the token, and refuse without --allow-chaos: enactors
(enactor/chaos.py) and the planner's burst (planner/burst.py), as real processes over HTTP, and
`dnsctl chaos` driving them."""

from __future__ import annotations

import json
import time

import pytest

from tests.race.lab import TOKEN, run_cli, start_enactor, start_planner, wait_healthy, write_fleet


@pytest.fixture(scope="module")
def services(emulator, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chaos")
    bucket = f"chaos-{int(time.time() * 1000) % 10**9}"
    fleet = write_fleet(tmp / "fleet.toml", f"chaos-{bucket}.dnsctl-test.example")
    started = {
        "enactor_on": start_enactor(tmp, emulator, bucket, "enactor-c", allow_chaos=True),
        "enactor_off": start_enactor(tmp, emulator, bucket, "enactor-b", allow_chaos=False),
        "planner_on": start_planner(tmp, emulator, bucket, fleet, allow_chaos=True),
        "planner_off": start_planner(tmp, emulator, bucket + "-off", fleet, allow_chaos=False),
    }
    try:
        wait_healthy(*started.values())
        yield started
    finally:
        for s in started.values():
            s.process.stop()


def test_enactor_refuses_without_allow_chaos(services):
    s = services["enactor_off"]
    with s.http() as http:
        assert http.get("/v1/chaos").json()["allow_chaos"] is False
        for method, path, body in (("POST", "/v1/chaos", {"lock_failures": 5}), ("POST", "/v1/chaos/pause", None),
                                   ("POST", "/v1/chaos/resume", None), ("DELETE", "/v1/chaos", None)):
            r = http.request(method, path, json=body)
            assert r.status_code == 403 and "--allow-chaos" in r.json()["detail"], (path, r.text)
        assert http.get("/v1/chaos").json()["faults"]["lock_failures"] == 0
    assert "chaos_changed" not in s.process.output()


def test_enactor_refuses_without_token(services):
    s = services["enactor_on"]
    for token in (None, "wrong-token"):
        with s.http(token) as http:
            for method, path, body in (("POST", "/v1/chaos", {"lock_failures": 5}), ("POST", "/v1/chaos/pause", None),
                                       ("DELETE", "/v1/chaos", None)):
                assert http.request(method, path, json=body).status_code == 401
    with s.http() as http:
        assert http.get("/v1/chaos").json()["faults"] == {
            "lock_failures": 0, "delay_before_flip_s": 0.0, "route53_latency_ms": 0, "route53_error_rate": 0.0,
            "backoff_multiplier": 1.0, "paused": False,
        }


def test_enactor_sets_pauses_and_clears_faults_and_logs_each_change(services):
    s = services["enactor_on"]
    with s.http() as http:
        for bad in ({}, {"lock_failures": -1}, {"route53_error_rate": 2}, {"surprise": 1}, {"backoff_multiplier": 0}):
            assert http.post("/v1/chaos", json=bad).status_code == 422, bad
        faults = http.post("/v1/chaos", json={"lock_failures": 5, "delay_before_flip_s": 20, "route53_latency_ms": 30}).json()["faults"]
        assert faults["lock_failures"] == 5 and faults["delay_before_flip_s"] == 20 and faults["route53_latency_ms"] == 30
        assert http.post("/v1/chaos/pause").json()["faults"]["paused"] is True
        assert http.post("/v1/chaos/resume").json()["faults"]["paused"] is False
        cleared = http.delete("/v1/chaos").json()["faults"]
        assert cleared["lock_failures"] == 0 and cleared["delay_before_flip_s"] == 0 and cleared["paused"] is False
    log = s.process.output()
    for event in ("chaos_changed", "chaos_paused", "chaos_resumed", "chaos_cleared"):
        assert f'"event": "{event}"' in log
    assert TOKEN not in log


def test_planner_burst_refuses_without_allow_chaos_or_token(services):
    off, on = services["planner_off"], services["planner_on"]
    body = {"every_ms": 100, "for_s": 0.5}
    with off.http() as http:
        newest = http.get("/v1/planner/status").json()["newest_version"]
        r = http.post("/v1/chaos/burst", json=body)
        assert r.status_code == 403 and "--allow-chaos" in r.json()["detail"]
        assert http.get("/v1/chaos/burst").json() == {"allow_chaos": False, "burst": None}
    for token in (None, "wrong-token"):
        with on.http(token) as http:
            assert http.post("/v1/chaos/burst", json=body).status_code == 401
            assert http.delete("/v1/chaos/burst").status_code == 401
    with on.http() as http:
        assert http.post("/v1/chaos/burst", json={"every_ms": 1, "for_s": 1}).status_code == 422
        assert http.post("/v1/chaos/burst", json={"every_ms": 100, "for_s": 0}).status_code == 422
        assert http.get("/v1/chaos/burst").json()["burst"] is None
    with off.http() as http:
        assert http.get("/v1/planner/status").json()["newest_version"] == newest


def test_planner_burst_publishes_and_the_cli_drives_it(services):
    planner, enactor = services["planner_on"], services["enactor_on"]
    env = {"DNSCTL_PLANNER_URL": planner.url, "DNSCTL_ENACTOR_C_URL": enactor.url}
    with planner.http() as http:
        before = http.get("/v1/planner/status").json()["newest_version"] or 0
    started = run_cli("chaos", "planner", "--burst-every-ms", "100", "--burst-for-s", "2", env=env)
    assert started.returncode == 0 and "running" in started.stdout, started.stdout + started.stderr
    with planner.http() as http:
        again = http.post("/v1/chaos/burst", json={"every_ms": 100, "for_s": 1})
        assert again.status_code == 409 and "already running" in again.json()["detail"]
        deadline = time.monotonic() + 20
        while http.get("/v1/chaos/burst").json()["burst"]["running"] and time.monotonic() < deadline:
            time.sleep(0.1)
        report = http.get("/v1/chaos/burst").json()["burst"]
        newest = http.get("/v1/planner/status").json()["newest_version"]
    assert report["running"] is False and report["published"] >= 3
    assert report["versions"] == [before + 1, newest] and newest - before == report["published"]
    assert '"event": "burst_started"' in planner.process.output() and '"event": "burst_finished"' in planner.process.output()

    shown = run_cli("chaos", "planner", "--json", env=env)
    assert json.loads(shown.stdout)["burst"]["published"] == report["published"]

    set_ = run_cli("chaos", "enactor-c", "--lock-failures", "5", "--delay-before-flip", "20", env=env)
    assert set_.returncode == 0 and "loses the next 5 lock attempts, holds back every flip 20 s" in set_.stdout
    paused = run_cli("chaos", "enactor-c", "--pause", env=env)
    assert "PAUSED" in paused.stdout
    resumed = run_cli("chaos", "enactor-c", "--resume", "--lock-failures", "0", "--delay-before-flip", "0", env=env)
    assert resumed.returncode == 0 and "no faults" in resumed.stdout

    no_token = run_cli("chaos", "enactor-c", "--lock-failures", "1", env={**env, "DNSCTL_API_TOKEN": "wrong"})
    assert no_token.returncode == 1 and "bearer token" in no_token.stderr


def test_clear_and_show_report_every_service(services):
    on, off, planner = services["enactor_on"], services["enactor_off"], services["planner_on"]
    env = {"DNSCTL_ENACTOR_A_URL": on.url, "DNSCTL_ENACTOR_B_URL": off.url, "DNSCTL_ENACTOR_C_URL": on.url,
           "DNSCTL_PLANNER_URL": planner.url}
    with on.http() as http:
        http.post("/v1/chaos", json={"lock_failures": 7})
        http.post("/v1/chaos/pause")
    shown = run_cli("chaos", "show", env=env)
    assert shown.returncode == 0
    assert "PAUSED, loses the next 7 lock attempts" in shown.stdout and "(chaos off)" in shown.stdout
    cleared = run_cli("chaos", "clear", env=env)
    # enactor-b refuses (no --allow-chaos): clear says so and fails, the others are cleared.
    assert cleared.returncode == 1 and "enactor-a: cleared" in cleared.stdout and "enactor-c: cleared" in cleared.stdout
    assert "enactor-b" in cleared.stdout and "--allow-chaos" in cleared.stdout
    with on.http() as http:
        assert http.get("/v1/chaos").json()["faults"]["paused"] is False
