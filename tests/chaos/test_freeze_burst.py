"""The kill switch holds through a burst: frozen, the planner publishes nothing however hard the
burst pushes, the enactors apply nothing (not even a plan that reaches the store some other way),
DNS stays exactly as it is, and every status says FROZEN. Thawed, the newest plan goes out.

Real processes: a planner (--allow-chaos) and three guarded enactors against the emulator, driven
through `dnsctl freeze`, `dnsctl chaos planner` and `dnsctl thaw`.
"""

from __future__ import annotations

import json
import time

from enactor import layout
from services.dns.snapshot import read_zone
from services.plan.model import Plan
from services.plan.store import PlanStore
from services.zones import ensure_zones, find_zone_id
from tests.race.lab import run_cli, start_enactor, start_planner, wait_healthy, write_fleet


def wait_for(what: str, done, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_freeze_holds_through_a_burst(emulator, unique, tmp_path):
    endpoint = f"freeze-{unique}.dnsctl-test.example"
    bucket = f"freeze-{unique}"
    client = emulator.client("route53")
    ensure_zones([endpoint], client)
    zone_id = find_zone_id(endpoint, client)
    store = PlanStore(bucket, "us-east-1", s3=emulator.client("s3"))

    def records() -> set:
        return set(read_zone(client, zone_id, layout.root_name(endpoint))[0])

    def serving() -> int | None:
        zone, _ = read_zone(client, zone_id, layout.root_name(endpoint))
        return layout.read_endpoint(endpoint, zone).active_version

    planner = start_planner(tmp_path, emulator, bucket, write_fleet(tmp_path / "fleet.toml", endpoint), allow_chaos=True)
    enactors = [start_enactor(tmp_path, emulator, bucket, name, allow_chaos=True) for name in ("enactor-a", "enactor-b", "enactor-c")]
    everything = [planner, *enactors]
    env = {"DNSCTL_PLANNER_URL": planner.url}
    try:
        wait_healthy(*everything)
        wait_for("plan 1 to be served", lambda: serving() == 1)  # the planner's first scheduled plan

        frozen = run_cli("freeze", "--reason", "race lab: freeze holds through a burst", env=env)
        assert frozen.returncode == 0 and "frozen by" in frozen.stdout, frozen.stdout + frozen.stderr

        def all_frozen() -> bool:
            return all(e.http().get("/status").json()["frozen"] for e in enactors)

        wait_for("every enactor to see the freeze", all_frozen)
        before = records()

        burst = run_cli("chaos", "planner", "--burst-every-ms", "100", "--burst-for-s", "2", env=env)
        assert burst.returncode == 0, burst.stdout + burst.stderr
        # A plan that reaches the store another way (a second planner, a hand upload) is not applied either.
        store.put(Plan.build(region="us-east-1", version=2, endpoints=store.get(1).endpoints, reason="not via the planner"))

        with planner.http() as http:
            wait_for("the burst to end", lambda: not http.get("/v1/chaos/burst").json()["burst"]["running"])
            report = http.get("/v1/chaos/burst").json()["burst"]
            status = http.get("/v1/planner/status").json()
            refused = http.post("/v1/plans", json={"reason": "during the freeze"})
        assert report["published"] == 0 and report["refused"].get("frozen", 0) >= 10 and report["failed"] == 0
        assert status["frozen"] is True and status["newest_version"] == 2
        assert refused.status_code == 409 and refused.json()["error"] == "frozen"

        time.sleep(1.5)  # several enactor polls (0.2 s) after plan 2 appeared
        assert records() == before  # DNS exactly as it was, the lock included
        for e in enactors:
            st = e.http().get("/status").json()
            assert st["frozen"] is True and st["state"] == "frozen", st
            assert all(ep["applied_version"] == 1 and ep["state"] == "frozen" for ep in st["endpoints"].values()), st
            assert '"event": "frozen"' in e.process.output()
        assert planner.process.output().count('"cause": "frozen"') >= report["refused"]["frozen"]
        watched = [x for e in enactors for x in ("--enactor", e.url)]
        status = run_cli("status", "--json", "--zone", endpoint, "--planner", planner.url, *watched, "--dns", "127.0.0.1:9", env=env)
        report = json.loads(status.stdout)
        assert report["planner"]["frozen"] is True and [e["state"] for e in report["enactors"]] == ["frozen"] * 3
        shown = run_cli("status", "--zone", endpoint, "--planner", planner.url, *watched, "--dns", "127.0.0.1:9", env=env)
        assert "FROZEN" in shown.stdout and shown.stdout.count("frozen") >= 3, shown.stdout

        thawed = run_cli("thaw", env=env)
        assert thawed.returncode == 0 and "thawed" in thawed.stdout
        wait_for("plan 2 to be served after the thaw", lambda: serving() == 2)
    finally:
        for s in everything:
            s.process.stop()
