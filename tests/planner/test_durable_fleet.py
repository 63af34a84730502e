"""The fleet as durable desired state: real planner processes against the real emulator process.

A drain survives kill -9 of the planner; two planners at once lose no change and publish no
version twice; endpoints and whole fleets change over REST and the CLI, with dry runs that write
nothing; a plan store behind Route 53 is numbered above it and raises PlanStoreBehind.
"""

from __future__ import annotations

import json
import threading
import uuid

import yaml

from planner.fleet import demo_fleet
from services.plan.store import PlanStore
from tests.planner.conftest import RunningPlanner
from tests.planner.test_cli import dnsctl, ok

FLEET = demo_fleet()
AZ4_LBS = {b.id for b in FLEET.load_balancers if b.az == "use1-az4"}


def weights(plan: dict) -> dict[str, int]:
    return {t["lb_id"]: t["weight"] for ep in plan["endpoints"] for t in ep["targets"]}


def fleet_history(store: PlanStore) -> list[dict]:
    """Every revision of the fleet document S3 kept (bucket versioning), oldest first."""
    key = f"fleet/{store.region}/desired.json"
    versions = store.s3.list_object_versions(Bucket=store.bucket, Prefix=key)["Versions"]
    docs = [
        json.loads(store.s3.get_object(Bucket=store.bucket, Key=key, VersionId=v["VersionId"])["Body"].read())
        for v in versions
        if v["Key"] == key
    ]
    return sorted(docs, key=lambda d: d["revision"])


def test_a_drain_survives_kill_9_and_the_fleet_file_only_seeds_an_empty_store(planner_factory) -> None:
    first = planner_factory()
    first.wait_for_version(1)
    with first.http() as http:
        r = http.post("/v1/fleet/azs/use1-az4/drain")
        assert r.status_code == 200, r.text
        assert r.json()["fleet_revision"] == 2
        assert r.json()["diff"]["endpoints"], "the publish says what it changed"
        drained_version = r.json()["plan"]["version"]
    first.process.kill9()

    # Same bucket, another fleet source: the stored fleet wins over the file.
    second = planner_factory(bucket=first.bucket, args=("--lbs", "10"))
    newest = second.wait_for_version(drained_version + 1)  # its first scheduled plan, at start
    with second.http() as http:
        fleet = http.get("/v1/fleet")
        assert fleet.json()["drained_azs"] == ["use1-az4"]
        assert fleet.headers["X-Fleet-Revision"] == "2"
        assert {b["id"] for b in fleet.json()["load_balancers"]} == {b.id for b in FLEET.load_balancers}
        scheduled = http.get(f"/v1/plans/{newest}").json()
        published = http.post("/v1/plans", json={"reason": "after restart"}).json()
        plan = http.get(f"/v1/plans/{published['version']}").json()
    for p in (scheduled, plan):
        w = weights(p)
        assert all(w[i] == 0 for i in AZ4_LBS) and any(w[i] > 0 for i in w if i not in AZ4_LBS)
    assert second.events("fleet_loaded") and not second.events("fleet_seeded")
    assert first.events("fleet_seeded")


def test_two_planners_at_once_lose_no_change_and_publish_no_version_twice(planner_factory) -> None:
    a = planner_factory()
    a.wait_for_version(1)
    b = planner_factory(bucket=a.bucket)
    b.wait_for_version(2)
    lbs = sorted(x.id for x in FLEET.load_balancers if x.az != "use1-az4")
    mine = {a: lbs[0::2], b: lbs[1::2]}
    errors: list[str] = []

    def work(p: RunningPlanner, k: int) -> None:
        with p.http() as http:
            for n, lb in enumerate(mine[p]):
                r = http.patch(f"/v1/fleet/load-balancers/{lb}", json={"capacity": 7000 + k * 100 + n})
                if r.status_code != 200:
                    errors.append(r.text)
                r = http.post("/v1/plans", json={"reason": f"{p.port} round {n}"})
                if r.status_code != 201:
                    errors.append(r.text)
            if p is a:
                r = http.post("/v1/fleet/azs/use1-az4/drain")
                if r.status_code != 200:
                    errors.append(r.text)

    threads = [threading.Thread(target=work, args=(p, k)) for k, p in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with b.http() as http:
        final = http.post("/v1/plans", json={"reason": "final"}).json()
        fleet_b = http.get("/v1/fleet").json()
    with a.http() as http:
        fleet_a = http.get("/v1/fleet").json()
        plan = http.get(f"/v1/plans/{final['version']}").json()
    assert fleet_a == fleet_b
    wanted = {lb: 7000 + k * 100 + n for k, p in enumerate((a, b)) for n, lb in enumerate(mine[p])}
    capacities = {x["id"]: x["capacity"] for x in fleet_a["load_balancers"]}
    assert {lb: capacities[lb] for lb in wanted} == wanted, "every change of both planners is in the fleet"
    assert fleet_a["drained_azs"] == ["use1-az4"]
    plan_caps = {t["lb_id"]: t["capacity"] for ep in plan["endpoints"] for t in ep["targets"]}
    assert {lb: plan_caps[lb] for lb in wanted} == wanted
    assert all(weights(plan)[i] == 0 for i in AZ4_LBS)

    store = a.store()
    history = fleet_history(store)
    revisions = [d["revision"] for d in history]
    writes = 1 + len(lbs) + 1  # the seed, every capacity change, the drain
    assert revisions == list(range(1, writes + 1)), "one revision per change, none lost, none twice"
    assert sum(d["change"].startswith("seeded") for d in history) == 1
    versions = store.s3.list_object_versions(Bucket=store.bucket, Prefix=store.prefix)["Versions"]
    plan_keys = [v["Key"] for v in versions if v["Key"] != store.pointer_key]
    assert len(plan_keys) == len(set(plan_keys)), "no plan version was written twice"
    numbers = sorted(int(k.rsplit("/", 1)[1].removesuffix(".json")) for k in plan_keys)
    assert numbers == list(range(1, numbers[-1] + 1))


def test_endpoints_as_desired_state_with_dry_runs_that_write_nothing(planner: RunningPlanner) -> None:
    name = f"cells-{uuid.uuid4().hex[:6]}.example.com"
    lbs = [
        {"id": f"cell-{k}", "az": "use1-az1", "endpoint": name, "capacity": 1000, "ipv4": [f"10.9.0.{k}"]}
        for k in (1, 2)
    ]
    body = {"endpoint": {"name": name, "record_types": ["A"]}, "load_balancers": lbs}
    with planner.http() as http:
        revision = planner.status()["fleet"]["revision"]
        dry = http.post("/v1/fleet/endpoints", json=body, params={"dry_run": True})
        assert dry.status_code == 201 and dry.json()["dry_run"] is True, dry.text
        assert dry.json()["verdict"] == "safe"
        assert [e["endpoint"] for e in dry.json()["diff"]["endpoints"]] == [name]
        assert planner.status()["fleet"]["revision"] == revision, "a dry run writes nothing"
        assert http.get("/v1/fleet").json()["endpoints"] == FLEET.model_dump(mode="json")["endpoints"]

        added = http.post("/v1/fleet/endpoints", json=body)
        assert added.status_code == 201 and added.json()["queued"] is True, added.text
        assert http.post("/v1/fleet/endpoints", json=body).status_code == 409
        v = http.post("/v1/plans", json={"reason": "with cells"}).json()["version"]
        plan = http.get(f"/v1/plans/{v}").json()
        assert {t["lb_id"] for e in plan["endpoints"] if e["name"] == name for t in e["targets"]} == {"cell-1", "cell-2"}

        # AAAA needs IPv6 addresses on every LB: refused with the field named, nothing changed.
        bad = http.patch(f"/v1/fleet/endpoints/{name}", json={"record_types": ["A", "AAAA"]})
        assert bad.status_code == 422 and "IPv6" in bad.text
        assert http.patch("/v1/fleet/endpoints/nope.example.com", json={"record_types": ["A"]}).status_code == 404

        # Removing an endpoint drops it from the plan: the safety check wants force.
        refused = http.delete(f"/v1/fleet/endpoints/{name}")
        assert refused.status_code == 409 and refused.json()["error"] == "unsafe"
        gone = http.delete(f"/v1/fleet/endpoints/{name}", params={"force": True})
        assert gone.status_code == 200, gone.text
        diff = gone.json()["diff"]
        assert [(e["endpoint"], e["status"]) for e in diff["endpoints"]] == [(name, "removed")]
        assert name not in {e["name"] for e in http.get("/v1/fleet").json()["endpoints"]}


def test_cli_dry_runs_diffs_and_fleet_load(planner: RunningPlanner, tmp_path) -> None:
    url = planner.url
    revision = planner.status()["fleet"]["revision"]
    out = ok(dnsctl("fleet", "drain-az", "use1-az4", "--dry-run", url=url))
    assert "dry run" in out and "safety verdict: safe" in out and "-> 0" in out
    out = ok(dnsctl("fleet", "drain-az", "use1-az1", "--dry-run", url=url))
    assert "safety verdict: unsafe" in out and "max_capacity_drop" in out and "--force" in out
    assert planner.status()["fleet"]["revision"] == revision and planner.status()["fleet"]["drained_azs"] == []

    before = planner.status()["newest_version"]
    out = ok(dnsctl("fleet", "set-capacity", "ddb-az1-a", "0", "--dry-run", url=url))
    assert "dry run" in out and "ddb-az1-a: weight" in out
    out = ok(dnsctl("plan", "trigger", "--dry-run", url=url))
    assert f"would publish plan {before + 1}" in out
    assert planner.status()["newest_version"] == before

    # fleet load: the diff first, nothing applied without --yes; then one compare-and-swap.
    changed = FLEET.model_dump(mode="json")
    changed["load_balancers"] = [b for b in changed["load_balancers"] if b["id"] != "ddb-az2-b"]
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(changed))
    out = ok(dnsctl("fleet", "load", str(path), url=url))
    assert "removed: ddb-az2-b" in out and "--yes" in out
    assert planner.status()["newest_version"] == before
    out = ok(dnsctl("fleet", "load", str(path), "--yes", url=url))
    assert "published plan" in out and "removed: ddb-az2-b" in out
    after = planner.status()["newest_version"]
    assert "ddb-az2-b" not in {b["id"] for b in httpx_fleet(planner)["load_balancers"]}

    out = ok(dnsctl("plan", "diff", str(before), str(after), url=url))
    assert "removed: ddb-az2-b" in out
    out = ok(dnsctl("plan", "restore", str(before), "--dry-run", url=url))
    assert f"would publish plan {after + 1}" in out and "added: ddb-az2-b" in out
    assert planner.status()["newest_version"] == after and "ddb-az2-b" not in {
        b["id"] for b in httpx_fleet(planner)["load_balancers"]
    }, "a dry-run restore publishes nothing and leaves the fleet"
    as_json = json.loads(ok(dnsctl("plan", "diff", str(before), str(after), "--json", url=url)))
    assert as_json["old_version"] == before and as_json["new_version"] == after

    # Over a revision that is no longer current: refused, not merged.
    with planner.http() as http:
        stale = http.put("/v1/fleet", json={"fleet": FLEET.model_dump(mode="json"), "expected_revision": 1})
        assert stale.status_code == 409 and stale.json()["error"] == "conflict"
        bad = http.put("/v1/fleet", json={"fleet": {**FLEET.model_dump(mode="json"), "azs": []}})
        assert bad.status_code == 422


def httpx_fleet(planner: RunningPlanner) -> dict:
    with planner.http() as http:
        return http.get("/v1/fleet").json()


def test_a_store_behind_route_53_is_numbered_above_it_and_alarms(planner_factory, emulator, tmp_path) -> None:
    """The bucket is empty but Route 53 says plan 250 is applied (plans deleted, bucket re-created)."""
    from enactor import layout
    from services.route53.records import RecordSet
    from services.zones import ensure_zones

    name = f"behind-{uuid.uuid4().hex[:6]}.example.com"
    fleet = FLEET.model_dump(mode="json")
    fleet["endpoints"] = [{"name": name, "record_types": ["A"]}]
    fleet["load_balancers"] = [
        {"id": "b-1", "az": "use1-az1", "endpoint": name, "capacity": 100, "ipv4": ["192.0.2.201"]}
    ]
    path = tmp_path / "behind.yaml"
    path.write_text(yaml.safe_dump(fleet))
    r53 = emulator.client("route53")
    zone_id = ensure_zones([name], r53)[layout.root_name(name)]
    applied = RecordSet(layout.applied_name(name), "TXT", ttl=60, values=(layout.AppliedValue(250, "t-x").render(),))
    r53.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": applied.to_boto()}]}
    )

    planner = planner_factory(args=("--fleet-file", str(path)), env={"DNSCTL_PLANNER_APPLIED_CHECK_INTERVAL": "0"})
    assert planner.wait_for_version(1) == 251, "numbered above what Route 53 applied, not from the empty store"
    behind = [json.loads(line) for line in planner.events("plan_store_behind")]
    assert behind and behind[0]["applied_version"] == 250 and behind[0]["store_version"] is None
    assert behind[0]["alarm"] == "PlanStoreBehind"
    assert planner.events("plan_store_caught_up")
    with planner.http() as http:
        assert http.post("/v1/plans", json={"reason": "next"}).json()["version"] == 252
        metrics = http.get("/metrics").text
    assert "dnsctl_planner_store_behind 0.0" in metrics and "dnsctl_planner_applied_version 250.0" in metrics


def test_a_damaged_fleet_document_keeps_the_last_good_fleet_until_replaced(planner: RunningPlanner) -> None:
    store = planner.store()
    key = f"fleet/{store.region}/desired.json"
    with planner.http() as http:
        assert http.post("/v1/fleet/azs/use1-az4/drain").status_code == 200
        store.s3.put_object(Bucket=store.bucket, Key=key, Body=b'{"revision": 3, "fleet": {"region": 7}}')
        published = http.post("/v1/plans", json={"reason": "on the last good fleet"})
        assert published.status_code == 201, published.text
        plan = http.get(f"/v1/plans/{published.json()['version']}").json()
        assert all(weights(plan)[i] == 0 for i in AZ4_LBS), "the last good fleet (drained) is kept"
        refused = http.post("/v1/fleet/azs/use1-az4/undrain")
        assert refused.status_code == 502 and refused.json()["error"] == "fleet_invalid"
        assert "fleet load" in refused.json()["detail"]
        assert float(_metric(http, "dnsctl_planner_fleet_invalid_total")) >= 1
        # The way out: load a fleet over the damaged document.
        loaded = http.put("/v1/fleet", json={"fleet": FLEET.model_dump(mode="json"), "reason": "repair"})
        assert loaded.status_code == 200, loaded.text
        assert http.get("/v1/fleet").json()["drained_azs"] == []
        assert http.post("/v1/fleet/azs/use1-az4/drain").status_code == 200
    assert len(planner.events("fleet_invalid")) == 1, "logged once per damaged document"
    assert planner.events("fleet_recovered")


def _metric(http, name: str) -> str:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return line.split()[1]
    return "0"
