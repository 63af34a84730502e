"""The planner service over HTTP, as a real process against the real emulator process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time

import boto3
import httpx
import yaml

from planner.fleet import demo_fleet
from tests.planner.conftest import TOKEN, start_planner
from tests.processes import ROOT, free_port

AZ1_LBS = {b.id for b in demo_fleet().load_balancers if b.az == "use1-az1"}
AZ4_LBS = {b.id for b in demo_fleet().load_balancers if b.az == "use1-az4"}


def weights(plan: dict) -> dict[str, int]:
    return {t["lb_id"]: t["weight"] for ep in plan["endpoints"] for t in ep["targets"]}


def metric(url: str, name: str, labels: str = "") -> float:
    text = httpx.get(f"{url}/metrics").text
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_health_docs_and_metrics(planner):
    health = httpx.get(f"{planner.url}/healthz").json()
    assert health["status"] == "ok" and health["store"]["ok"] is True
    assert httpx.get(f"{planner.url}/docs").status_code == 200
    paths = httpx.get(f"{planner.url}/openapi.json").json()["paths"]
    for path in (
        "/v1/fleet",
        "/v1/fleet/load-balancers",
        "/v1/fleet/load-balancers/{lb_id}",
        "/v1/fleet/azs/{az}/drain",
        "/v1/fleet/azs/{az}/undrain",
        "/v1/plans",
        "/v1/plans/{version}",
        "/v1/plans/{version}/restore",
        "/v1/planner/freeze",
        "/v1/planner/thaw",
        "/v1/planner/status",
    ):
        assert path in paths
    assert metric(planner.url, "dnsctl_planner_plans_published_total", '{lane="slow"}') >= 1
    assert planner.events("plan_published"), "the start-up plan is logged"


def test_versions_strictly_increase_and_land_in_s3(planner):
    store = planner.store()
    with planner.http() as http:
        versions = []
        for i in range(4):
            r = http.post("/v1/plans", json={"reason": f"step {i}"})
            assert r.status_code == 201, r.text
            versions.append(r.json()["version"])
    assert versions == sorted(versions) and len(set(versions)) == 4
    assert versions[0] >= 2  # the start-up plan was 1
    for i, v in enumerate(versions):
        assert store.get(v).reason == f"requested: step {i}"
    assert planner.status()["newest_version"] == versions[-1]


def test_eight_concurrent_publishes_on_two_planners_lose_and_duplicate_nothing(planner_factory):
    first = planner_factory()
    second = planner_factory(bucket=first.bucket)  # two planners racing on one bucket
    first.wait_for_version(1)
    results: list[tuple[str, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def publish(i: int) -> None:
        target = first if i % 2 else second
        with target.http() as http:
            barrier.wait()
            r = http.post("/v1/plans", json={"reason": f"concurrent-{i}"})
        assert r.status_code == 201, r.text
        with lock:
            results.append((f"requested: concurrent-{i}", r.json()["version"]))

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    versions = [v for _, v in results]
    assert len(set(versions)) == 8, f"duplicate versions: {sorted(versions)}"
    store = first.store()
    newest = store.newest_version()
    # Every version from 1 to newest exists exactly once and holds what its publisher was told.
    for v in range(1, newest + 1):
        assert (
            len(store.s3.list_object_versions(Bucket=store.bucket, Prefix=store.key_for(v))["Versions"]) == 1
        )
    for reason, v in results:
        assert store.get(v).reason == reason


def test_auth_is_required_and_a_refused_call_changes_nothing(planner):
    before_fleet = httpx.get(f"{planner.url}/v1/fleet").json()
    before_version = planner.status()["newest_version"]
    for token in (None, "wrong-token"):
        with planner.http(token) as http:
            calls = [
                http.post("/v1/plans"),
                http.patch("/v1/fleet/load-balancers/ddb-az1-a", json={"capacity": 1}),
                http.delete("/v1/fleet/load-balancers/ddb-az1-a"),
                http.post("/v1/fleet/azs/use1-az4/drain"),
                http.post("/v1/fleet/azs/use1-az4/undrain"),
                http.post("/v1/fleet/load-balancers", json={"id": "x"}),
                http.post("/v1/plans/1/restore"),
                http.post("/v1/planner/freeze", json={"reason": "no"}),
                http.post("/v1/planner/thaw"),
            ]
        for r in calls:
            assert r.status_code == 401, (r.request.method, r.request.url, r.status_code)
    assert httpx.get(f"{planner.url}/v1/fleet").json() == before_fleet
    status = planner.status()
    assert status["newest_version"] == before_version and status["frozen"] is False
    assert "planner-test-token" not in planner.process.output()


def test_bad_bodies_get_422_with_field_errors_and_change_nothing(planner):
    before_fleet = httpx.get(f"{planner.url}/v1/fleet").json()
    with planner.http() as http:
        r = http.post("/v1/fleet/load-balancers", json={"id": "Bad Id", "az": "use1-az1", "capacity": -1})
        assert r.status_code == 422
        locs = {tuple(e["loc"]) for e in r.json()["detail"]}
        assert {("body", "id"), ("body", "endpoint"), ("body", "capacity")} <= locs
        r = http.post(
            "/v1/fleet/load-balancers",
            json={
                "id": "new-1",
                "az": "use1-az9",
                "endpoint": "dynamodb.us-east-1.api.aws",
                "ipv4": ["192.0.2.99"],
                "capacity": 5,
            },
        )
        assert r.status_code == 422
        assert {tuple(e["loc"]) for e in r.json()["detail"]} == {("body", "az"), ("body", "ipv6")}
        r = http.patch("/v1/fleet/load-balancers/ddb-az1-a", json={"capacity": "lots"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "capacity"]
        r = http.patch("/v1/fleet/load-balancers/ddb-az1-a", json={})
        assert r.status_code == 422
        r = http.patch("/v1/fleet/load-balancers/ddb-az1-a", json={"state": "melting"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "state"]
        r = http.post("/v1/planner/freeze", json={"reason": ""})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "reason"]
        assert http.get("/v1/plans", params={"limit": 0}).status_code == 422
        assert http.patch("/v1/fleet/load-balancers/nope", json={"capacity": 1}).status_code == 404
        assert http.post("/v1/fleet/azs/use1-az3/drain").status_code == 404
    assert httpx.get(f"{planner.url}/v1/fleet").json() == before_fleet
    assert planner.status()["frozen"] is False


def test_plan_history_pages_and_single_plans(planner):
    with planner.http() as http:
        for _ in range(5):
            http.post("/v1/plans").raise_for_status()
        page = http.get("/v1/plans", params={"limit": 4}).json()
        assert page["newest_version"] == 6
        assert [p["version"] for p in page["plans"]] == [6, 5, 4, 3]
        assert page["next_before"] == 3
        rest = http.get("/v1/plans", params={"limit": 4, "before": 3}).json()
        assert [p["version"] for p in rest["plans"]] == [2, 1] and rest["next_before"] is None
        plan = http.get("/v1/plans/4").json()
        assert plan["version"] == 4 and len(plan["sha256"]) == 64
        assert http.get("/v1/plans/latest").json()["version"] == 6
        missing = http.get("/v1/plans/99")
        assert missing.status_code == 404 and "0000000099.json" in missing.json()["detail"]


def test_fast_lane_publishes_at_once_and_restore_rolls_back(planner):
    with planner.http() as http:
        before = http.post("/v1/plans", json={"reason": "baseline"}).json()["version"]
        r = http.post("/v1/fleet/azs/use1-az4/drain")
        assert r.status_code == 200, r.text
        drained = r.json()
        assert drained["lane"] == "fast" and drained["queued"] is False
        v_drain = drained["plan"]["version"]
        assert v_drain == before + 1 == planner.status()["newest_version"]
        w = weights(http.get(f"/v1/plans/{v_drain}").json())
        assert all(w[i] == 0 for i in AZ4_LBS) and all(w[i] > 0 for i in AZ1_LBS)

        r = http.post(f"/v1/plans/{before}/restore", json={"reason": "undo the drain"})
        assert r.status_code == 201, r.text
        restored = r.json()
        assert restored["version"] == v_drain + 1 and restored["restored_version"] == before
        old, new = http.get(f"/v1/plans/{before}").json(), http.get(f"/v1/plans/{restored['version']}").json()
        assert new["endpoints"] == old["endpoints"]
        assert new["reason"] == f"restore of plan {before}: undo the drain" and new["lane"] == "fast"
        # The planner adopted the restored state: the next plan builds on it, not on the drain.
        fleet = http.get("/v1/fleet").json()
        assert all(lb["state"] == "active" for lb in fleet["load_balancers"] if lb["id"] in AZ4_LBS)
        nxt = http.post("/v1/plans").json()["version"]
        assert all(weights(http.get(f"/v1/plans/{nxt}").json())[i] > 0 for i in AZ4_LBS)
        assert http.post("/v1/plans/999/restore").status_code == 404
    assert planner.events("plan_restored")


def test_unsafe_plans_are_refused_unless_forced(planner):
    url = planner.url
    refusals = metric(url, "dnsctl_planner_plan_refusals_total", '{cause="unsafe"}')
    with planner.http() as http:
        start = planner.status()["newest_version"]
        r = http.post("/v1/fleet/azs/use1-az1/drain")
        assert r.status_code == 409
        body = r.json()
        assert body["error"] == "unsafe" and "force=true" in body["detail"]
        assert {v["rule"] for v in body["violations"]} == {"capacity_drop"}
        assert http.get("/v1/fleet").json()["drained_azs"] == []
        assert planner.status()["newest_version"] == start
        # Slow-lane changes are checked when they are made, too.
        r = http.patch("/v1/fleet/load-balancers/ddb-az1-a", json={"capacity": 0})
        assert r.status_code == 200  # 8000 of 34000: under 30 %
        r = http.patch("/v1/fleet/load-balancers/ddb-az2-a", json={"capacity": 0})
        assert r.status_code == 409  # together: 14000 of 34000
        assert http.get("/v1/fleet").json()["load_balancers"][3]["capacity"] == 6000
        assert len(planner.status()["queued_changes"]) == 1
        assert http.patch("/v1/fleet/load-balancers/ddb-az1-a", json={"capacity": 8000}).status_code == 200
        # Draining every AZ would leave no address at all.
        http.post("/v1/fleet/azs/use1-az4/drain").raise_for_status()
        r = http.post("/v1/fleet/azs/use1-az1/drain", params={"force": "true"})
        assert r.status_code == 200 and r.json()["plan"]["version"] == start + 2
        r = http.post("/v1/fleet/azs/use1-az2/drain", params={"force": "false"})
        assert r.status_code == 409 and "no_address" in {v["rule"] for v in r.json()["violations"]}
    assert metric(url, "dnsctl_planner_plan_refusals_total", '{cause="unsafe"}') == refusals + 3
    assert metric(url, "dnsctl_planner_forced_plans_total") >= 1
    assert len(planner.events("plan_refused")) == 3
    assert planner.events("plan_forced")


def test_freeze_stops_every_publication_until_thawed(planner_factory):
    planner = planner_factory(interval_s=0.5)
    planner.wait_for_version(1)
    with planner.http() as http:
        r = http.post("/v1/planner/freeze", json={"reason": "bad plans in flight", "by": "tester"})
        assert r.status_code == 200 and r.json()["newly_frozen"] is True
        frozen_at = planner.status()["newest_version"]
        r = http.post("/v1/plans")
        assert r.status_code == 409 and r.json()["error"] == "frozen"
        assert "bad plans in flight" in r.json()["detail"] and "thaw" in r.json()["detail"]
        assert http.post("/v1/fleet/azs/use1-az4/drain").status_code == 409
        assert http.post(f"/v1/plans/{frozen_at}/restore").status_code == 409
        time.sleep(1.6)  # three scheduled runs
        status = planner.status()
        assert status["newest_version"] == frozen_at
        assert status["frozen"] is True and status["freeze"]["by"] == "tester"
        marker = planner.store().freeze_state()
        assert marker is not None and marker.reason == "bad plans in flight"
        assert http.get("/v1/fleet").json()["drained_azs"] == []
        again = http.post("/v1/planner/freeze", json={"reason": "second"}).json()
        assert again["newly_frozen"] is False and again["reason"] == "bad plans in flight"
        r = http.post("/v1/planner/thaw", json={"by": "tester"})
        assert r.status_code == 200 and r.json()["lifted"]["reason"] == "bad plans in flight"
        assert http.post("/v1/plans").status_code == 201
    assert planner.store().freeze_state() is None
    assert planner.status()["frozen"] is False
    assert len(planner.events("planner_frozen")) == 1 and len(planner.events("planner_thawed")) == 1
    assert len([e for e in planner.events("plan_refused") if '"cause": "frozen"' in e]) >= 5
    assert metric(planner.url, "dnsctl_planner_plan_refusals_total", '{cause="frozen"}') >= 5


def test_slow_lane_changes_coalesce_into_the_next_scheduled_plan(planner_factory):
    planner = planner_factory(interval_s=6.0, args=("--drift", "0.02"))  # drift is off unless asked
    v0 = planner.wait_for_version(1)
    v1 = planner.wait_for_version(v0 + 1)  # just after a scheduled run: about 6 s until the next
    with planner.http() as http:
        changes = [
            http.patch("/v1/fleet/load-balancers/ddb-az1-b", json={"capacity": 5000}),
            http.patch("/v1/fleet/load-balancers/ddb-az2-b", json={"capacity": 4500}),
            http.post(
                "/v1/fleet/load-balancers",
                json={
                    "id": "ddb-az4-new",
                    "az": "use1-az4",
                    "endpoint": "dynamodb.us-east-1.amazonaws.com",
                    "ipv4": ["192.0.2.90"],
                    "capacity": 3000,
                },
            ),
        ]
        for r in changes:
            assert r.status_code in (200, 201), r.text
            assert r.json()["queued"] is True and r.json()["plan"] is None and r.json()["lane"] == "slow"
        assert planner.status()["newest_version"] == v1, "slow-lane changes publish nothing by themselves"
        assert len(planner.status()["queued_changes"]) == 3
        v2 = planner.wait_for_version(v1 + 1)
        plan = http.get(f"/v1/plans/{v2}").json()
    assert plan["lane"] == "slow" and "3 queued change(s)" in plan["reason"]
    capacities = {t["lb_id"]: t["capacity"] for ep in plan["endpoints"] for t in ep["targets"]}
    assert (capacities["ddb-az1-b"], capacities["ddb-az2-b"], capacities["ddb-az4-new"]) == (5000, 4500, 3000)
    assert planner.status()["queued_changes"] == []
    # Scheduled plans keep coming, with the simulated traffic drift asked for making them differ.
    v3 = planner.wait_for_version(v2 + 1)
    with planner.http() as http:
        assert weights(http.get(f"/v1/plans/{v3}").json()) != weights(plan)


def test_s3_unreachable_gives_503_and_the_planner_recovers_when_it_comes_back(tmp_path, tmp_path_factory):
    port = free_port()
    planner = start_planner(tmp_path, f"http://127.0.0.1:{port}", interval_s=0.5)
    try:
        # Alive, but not ready: /healthz stays 200, /readyz names S3 as the problem.
        health = httpx.get(f"{planner.url}/healthz").json()
        assert health["status"] == "ok" and f"127.0.0.1:{port}" in health["store"]["detail"]
        ready = httpx.get(f"{planner.url}/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["s3"]["ok"] is False, ready.text
        with planner.http() as http:
            for call in (
                lambda: http.post("/v1/plans"),
                lambda: http.get("/v1/plans"),
                lambda: http.get("/v1/plans/1"),
                lambda: http.post("/v1/fleet/azs/use1-az4/drain"),
                lambda: http.post("/v1/planner/freeze", json={"reason": "x"}),
            ):
                r = call()
                assert r.status_code == 503, r.text
                assert r.json()["error"] == "store_unavailable"
                assert (
                    f"http://127.0.0.1:{port}" in r.json()["detail"]
                    and "AWS_ENDPOINT_URL" in r.json()["detail"]
                )
            status = http.get("/v1/planner/status").json()
            assert status["store"]["ok"] is False and status["newest_version"] is None
            # The desired fleet lives in S3 too: without S3 there is no fleet to show (nor to change).
            fleet = http.get("/v1/fleet")
            assert fleet.status_code == 503 and fleet.json()["error"] == "store_unavailable"
        time.sleep(1.0)
        assert planner.process.proc.poll() is None, "the planner keeps running"
        assert len(planner.events("store_unavailable")) == 1, "logged once, when S3 went away"

        # Now S3 appears at that address: the planner creates its bucket lazily and carries on.
        from tests.processes import ManagedProcess

        emu = ManagedProcess(
            "late-emulator", ["emulator", "--port", str(port)], None, tmp_path_factory.mktemp("late")
        )
        try:
            emu.wait_http(f"http://127.0.0.1:{port}/moto-api/", timeout_s=30)
            planner.wait_for_version(1, timeout_s=20)
            assert httpx.get(f"{planner.url}/healthz").json()["status"] == "ok"
            wait_ready = time.monotonic() + 20
            while httpx.get(f"{planner.url}/readyz").status_code != 200 and time.monotonic() < wait_ready:
                time.sleep(0.2)
            assert httpx.get(f"{planner.url}/readyz").status_code == 200
            with planner.http() as http:
                assert http.post("/v1/plans").status_code == 201
                assert http.get("/v1/fleet").json()["drained_azs"] == []  # the refused drain changed nothing
            assert planner.events("store_recovered") and planner.events("fleet_seeded")
        finally:
            emu.stop()
    finally:
        planner.process.stop()


def test_a_damaged_plan_in_s3_is_reported_and_skipped(planner):
    store = planner.store()
    newest = planner.status()["newest_version"]
    bad_key = store.key_for(newest + 1)
    boto3.client("s3").put_object(Bucket=planner.bucket, Key=bad_key, Body=b'{"version": "oops"}')
    with planner.http() as http:
        r = http.get(f"/v1/plans/{newest + 1}")
        assert r.status_code == 502 and r.json()["key"] == bad_key and bad_key in r.json()["detail"]
        listed = http.get("/v1/plans").json()["plans"]
        assert listed[0]["version"] == newest + 1 and "invalid" in listed[0]
        assert listed[1]["version"] == newest and "invalid" not in listed[1]
        r = http.post("/v1/plans", json={"reason": "after damage"})
        assert r.status_code == 201 and r.json()["version"] == newest + 2
    assert any(bad_key in e for e in planner.events("plan_invalid"))


def test_fleet_file_and_generated_fleets(planner_factory, tmp_path):
    data = demo_fleet().model_dump(mode="json")
    data["load_balancers"] = [lb for lb in data["load_balancers"] if lb["id"].endswith("-a")]
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(data))
    from_file = planner_factory(args=("--fleet-file", str(path)))
    from_file.wait_for_version(1)
    assert httpx.get(f"{from_file.url}/v1/fleet").json() == data
    plan = httpx.get(f"{from_file.url}/v1/plans/1").json()
    assert {t["lb_id"] for ep in plan["endpoints"] for t in ep["targets"]} == {
        lb["id"] for lb in data["load_balancers"]
    }

    generated = planner_factory(args=("--lbs", "300", "--seed", "5"))
    generated.wait_for_version(1)
    plan = httpx.get(f"{generated.url}/v1/plans/1").json()
    assert sum(len(ep["targets"]) for ep in plan["endpoints"]) == 300


def test_a_bad_fleet_file_stops_the_planner_with_a_clear_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        'region = "us-east-1"\nazs = ["use1-az1"]\n[[endpoints]]\nname = "x.example.com"\nrecord_types = ["MX"]\n'
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "planner",
            "--port",
            str(free_port()),
            "--fleet-file",
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "DNSCTL_API_TOKEN": TOKEN, "AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
    )
    assert run.returncode == 2
    assert str(path) in run.stderr and "endpoints.0.record_types" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_schedule_hold_stops_scheduled_plans_only_and_ends_by_itself(planner_factory):
    """The race lab's hold (planner/burst.py): while held, the timer publishes nothing and a
    requested plan still goes out; it ends when released, or by itself when its time is up."""
    planner = planner_factory(interval_s=0.5, args=("--allow-chaos",))
    planner.wait_for_version(2)
    with planner.http() as http:
        for body in ({"for_s": 0}, {"for_s": 3601}, {"for_s": 5, "extra": 1}):  # checked before anything changes
            assert http.post("/v1/chaos/schedule-hold", json=body).status_code == 422, body
        assert planner.status()["schedule_held_s"] is None
        with planner.http(token=None) as anonymous:
            assert anonymous.post("/v1/chaos/schedule-hold", json={"for_s": 60}).status_code == 401
        r = http.post("/v1/chaos/schedule-hold", json={"for_s": 60, "by": "test"})
        assert r.status_code == 200 and 0 < r.json()["schedule_held_s"] <= 60, r.text
        held = planner.status()
        assert held["schedule_held_by"] == "test"
        time.sleep(2.5)  # five intervals
        newest = planner.status()["newest_version"]
        assert newest <= held["newest_version"] + 1, "a scheduled run already under way when the hold came may finish"
        time.sleep(1.5)
        assert planner.status()["newest_version"] == newest, "no scheduled plan while held"
        requested = http.post("/v1/plans", json={"reason": "while held"})
        assert requested.status_code == 201 and requested.json()["version"] == newest + 1
        assert http.delete("/v1/chaos/schedule-hold").json() == {"released": True}
        planner.wait_for_version(newest + 3)  # scheduled plans again
        # A short hold ends by itself.
        assert http.post("/v1/chaos/schedule-hold", json={"for_s": 1.5}).status_code == 200
        after = planner.status()["newest_version"]
        planner.wait_for_version(after + 3, timeout_s=15)
    assert planner.status()["schedule_held_s"] is None
    events = [json.loads(line)["by"] for line in planner.events("schedule_released")]
    assert events == ["api", "expiry"] and len(planner.events("schedule_held")) == 2


def test_a_schedule_hold_is_chaos_and_refused_without_allow_chaos(planner):
    with planner.http() as http:
        r = http.post("/v1/chaos/schedule-hold", json={"for_s": 60})
        assert r.status_code == 403 and "--allow-chaos" in r.json()["detail"]
        assert http.delete("/v1/chaos/schedule-hold").status_code == 403
    assert planner.status()["schedule_held_s"] is None
