"""Enactors as real processes against the emulator process; plans written straight to the store.

A watcher thread lists every endpoint's zone through the Route 53 API all along and holds the
system to its invariants on every snapshot: once a root exists it resolves to a complete tree,
and (guarded) the applied version never goes down.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from enactor import layout
from enactor import protocol as p
from enactor.faults import Faults
from enactor.metrics import EnactorMetrics
from enactor.runner import InconsistentListing, PlanSource, Route53Zone
from services.plan.store import PlanStore
from services.zones import ensure_zones, find_zone_id
from tests.enactor.world import endpoint_plan, make_plan
from tests.processes import ManagedProcess, free_port

REGION = "us-east-1"
ENACTORS = (("enactor-a", "use1-az1"), ("enactor-b", "use1-az2"), ("enactor-c", "use1-az4"))


@dataclass
class Watcher:
    """Polls Route 53 and records every invariant violation it sees."""

    zones: dict[str, str]  # endpoint -> zone id
    client: object
    guard: bool
    violations: list[str] = field(default_factory=list)
    applied: dict[str, int] = field(default_factory=dict)
    snapshots: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        readers = {ep: Route53Zone(self.client, zid, ep, EnactorMetrics(), Faults()) for ep, zid in self.zones.items()}
        while not self.stop.is_set():
            for ep, reader in readers.items():
                try:
                    view = layout.read_endpoint(ep, reader.snapshot())
                except InconsistentListing:
                    continue
                self.check(ep, view)
            self.snapshots += 1
            self.stop.wait(0.05)

    def check(self, ep: str, view: layout.EndpointZone) -> None:
        if view.roots and view.dangling:
            self.violations.append(f"{ep}: root points at a missing or incomplete tree {view.root_targets()}")
        if self.guard:
            version = view.applied_value.version if view.applied_value else 0
            if version < self.applied.get(ep, 0):
                self.violations.append(f"{ep}: applied version went from {self.applied[ep]} down to {version}")
            self.applied[ep] = max(version, self.applied.get(ep, 0))
            if view.roots and view.active_version != version:
                self.violations.append(f"{ep}: root serves {view.active_version}, applied record says {version}")

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)


@dataclass
class Enactor:
    name: str
    port: int
    process: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status(self) -> dict:
        return httpx.get(self.url + "/status", timeout=5).json()

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for line in httpx.get(self.url + "/metrics", timeout=5).text.splitlines():
            if line.startswith("dnsctl_enactor_") and "_created" not in line:
                name, value = line.rsplit(" ", 1)
                metric = name.split("{", 1)[0]
                out[metric] = out.get(metric, 0.0) + float(value)
        return out


class Lab:
    def __init__(self, emulator, unique: str, tmp_path: Path, n_endpoints: int = 3):
        self.emulator = emulator
        self.tmp = tmp_path
        self.endpoints = [f"ep{k}-{unique}.dnsctl-test.example" for k in range(n_endpoints)]
        self.client = emulator.client("route53")
        ensure_zones(self.endpoints, self.client)
        self.zones = {layout.root_name(ep): find_zone_id(ep, self.client) for ep in self.endpoints}
        self.bucket = f"plans-{unique}"
        self.store = PlanStore(self.bucket, REGION, s3=emulator.client("s3"))
        self.store.ensure_bucket()
        self.enactors: dict[str, Enactor] = {}

    def plan(self, version: int, lbs: int = 3, big: int = 0):
        """Every endpoint with `lbs` load balancers, except the dual-stack one (endpoint 1) with `big` if given."""
        eps = []
        for k, ep in enumerate(self.endpoints):
            types = ("A", "AAAA") if k == 1 else ("A",)
            n = big if big and k == 1 else lbs
            eps.append(endpoint_plan(ep, n, types=types, weight=lambda i, v=version: 1 + (i * 7 + v) % 200))
        return make_plan(version, eps)

    def start(self, guard: bool = True, names=ENACTORS, **env: str) -> None:
        base = {
            **self.emulator.env(),
            "DNSCTL_BUCKET": self.bucket,
            "DNSCTL_REGION": REGION,
            "DNSCTL_ENACTOR_LOCK_TTL_S": "4",
            "DNSCTL_ENACTOR_PROPAGATION_TIMEOUT_S": "2",
            "DNSCTL_ENACTOR_BACKOFF_CAP_S": "1.0",
            "DNSCTL_ENACTOR_BACKOFF_BASE_S": "0.05",
            **env,
        }
        for name, az in names:
            port = free_port()
            args = ["enactor", "--id", name, "--az", az, "--port", str(port), "--poll-interval", "0.2",
                    "--version-guard" if guard else "--no-version-guard"]
            proc = ManagedProcess(name, args, base, self.tmp)
            self.enactors[name] = Enactor(name, port, proc)
        for e in self.enactors.values():
            e.process.wait_http(e.url + "/healthz", timeout_s=30)

    def stop(self) -> None:
        for e in self.enactors.values():
            e.process.stop()

    def views(self) -> dict[str, layout.EndpointZone]:
        out = {}
        for ep, zid in self.zones.items():
            reader = Route53Zone(self.client, zid, ep, EnactorMetrics(), Faults())
            out[ep] = layout.read_endpoint(ep, reader.snapshot())
        return out

    def wait_applied(self, version: int, timeout_s: float = 60.0) -> dict[str, layout.EndpointZone]:
        deadline = time.monotonic() + timeout_s
        views: dict[str, layout.EndpointZone] = {}
        while time.monotonic() < deadline:
            views = self.views()
            if all(v.active_version == version and not v.dangling for v in views.values()):
                return views
            time.sleep(0.2)
        got = {ep: (v.active_version, v.dangling) for ep, v in views.items()}
        logs = "\n".join(e.process.output()[-2000:] for e in self.enactors.values())
        raise AssertionError(f"endpoints did not converge on {version}: {got}\n{logs}")

    def events(self, name: str) -> list[dict]:
        out = []
        for line in self.enactors[name].process.output().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out


@pytest.fixture
def lab(emulator, unique, tmp_path):
    lab = Lab(emulator, unique, tmp_path)
    yield lab
    lab.stop()


def test_three_enactors_converge_on_the_newest_plan(lab):
    with Watcher(lab.zones, lab.client, guard=True) as watcher:
        lab.start()
        for v in (1, 2, 3):
            lab.store.put(lab.plan(v))
            time.sleep(0.1)
        views = lab.wait_applied(3)
        time.sleep(1.0)
    assert watcher.snapshots > 5 and watcher.violations == []
    for view in views.values():
        assert view.applied_value.version == 3
        assert view.active_tree.complete and len(view.active_tree.meta.members) == 3
    statuses = [e.status() for e in lab.enactors.values()]
    for st in statuses:
        assert st["version_guard"] is True and st["frozen"] is False
        assert set(st["endpoints"]) == {ep.rstrip(".") for ep in lab.zones}
        assert all(e["applied_version"] == 3 and e["state"] in ("idle", "working") for e in st["endpoints"].values())
    metrics = [e.metrics() for e in lab.enactors.values()]
    assert sum(m.get("dnsctl_enactor_lock_wins_total", 0) for m in metrics) >= 3
    assert sum(m.get("dnsctl_enactor_flips_total", 0) for m in metrics) >= 3
    assert all(m.get("dnsctl_enactor_plan_lag", 1) == 0 for m in metrics)
    events = {ev["event"] for name in lab.enactors for ev in lab.events(name)}
    assert {"plan_seen", "lock_attempt", "lock_acquired", "tree_built", "flipped", "lock_released"} <= events
    sample = next(ev for name in lab.enactors for ev in lab.events(name) if ev["event"] == "flipped")
    assert {"enactor", "endpoint", "plan_version", "applied_version", "batch_id", "ts", "seq"} <= set(sample)


def _lock(lab: Lab, ep: str) -> layout.LockValue | None:
    page = lab.client.list_resource_record_sets(
        HostedZoneId=lab.zones[ep], StartRecordName=layout.lock_name(ep), StartRecordType="TXT", MaxItems="1"
    )
    found = [r for r in page["ResourceRecordSets"] if layout.root_name(r["Name"]) == layout.lock_name(ep) and r["Type"] == "TXT"]
    return layout.LockValue.parse(found[0]["ResourceRecords"][0]["Value"]) if found else None


def test_kill_9_mid_work_leaves_no_half_built_tree_behind_any_root(lab):
    with Watcher(lab.zones, lab.client, guard=True) as watcher:
        # Route 53 paced at 3 calls/s per process keeps a 300-LB dual-stack unit going for seconds.
        env = {"DNSCTL_ROUTE53_RPS": "3"}
        lab.start(**env)
        lab.store.put(lab.plan(1))
        lab.wait_applied(1)
        victim = None
        for version in range(2, 7):
            lab.store.put(lab.plan(version, big=300))
            seen, deadline = None, time.monotonic() + 60
            while seen is None and time.monotonic() < deadline:
                for ep in lab.zones:
                    lock = _lock(lab, ep)
                    if lock and lock.expires > time.time() + 1 and lock.holder in lab.enactors:
                        seen = (ep, lock)  # a renewed, unexpired lock: its holder is inside a unit
                        break
            assert seen is not None, "never saw an enactor mid-unit"
            ep, lock = seen
            lab.enactors[lock.holder].process.kill9()
            if _lock(lab, ep) == lock:  # it died holding the lock: killed mid-unit
                victim, killed_at = lock.holder, time.time()
                break
            # It finished its unit before the signal landed: bring it back and try the next plan.
            lab.enactors.pop(lock.holder).process.stop()
            lab.start(names=[n for n in ENACTORS if n[0] == lock.holder], **env)
        assert victim is not None, "could not kill an enactor in the middle of a unit in 5 tries"
        views = lab.wait_applied(version, timeout_s=120)
    assert watcher.violations == []
    for k, view in enumerate(views.values()):
        assert view.active_tree.complete and len(view.active_tree.meta.members) == (300 if k == 1 else 3)
    # The others waited out the victim's lock (unexpired when it died), then took it over.
    takeovers = [ev for name in lab.enactors if name != victim for ev in lab.events(name)
                 if ev["event"] == "lock_attempt" and ev.get("holder") == victim and ev.get("verdict") == "expired"]
    assert takeovers and max(ev["ts"] for ev in takeovers) >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(killed_at))
    # A later plan's clean-up removes whatever the victim left half-built.
    lab.store.put(lab.plan(version + 1, big=300))
    lab.wait_applied(version + 1, timeout_s=90)
    time.sleep(2.0)
    for view in lab.views().values():
        assert all(t.complete for t in view.trees), [t.tree_id for t in view.trees if not t.complete]


@pytest.mark.slow
def test_guarded_under_plan_churn_applied_never_decreases_and_roots_stay_whole(lab):
    seconds = float(os.environ.get("DNSCTL_TEST_CHURN_S", "60"))
    with Watcher(lab.zones, lab.client, guard=True) as watcher:
        lab.start(DNSCTL_ROUTE53_RPS="50")
        published = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            published = lab.store.publish(lambda v: lab.plan(v)).version
            time.sleep(0.2)
        lab.wait_applied(published, timeout_s=60)
    # Enough plans to churn (the rate itself is a benchmark's figure: a loaded machine publishes fewer).
    assert published >= 20, published
    assert watcher.snapshots > seconds, watcher.snapshots
    assert watcher.violations == [], watcher.violations[:5]
    metrics = [e.metrics() for e in lab.enactors.values()]
    assert sum(m.get("dnsctl_enactor_lock_losses_total", 0) for m in metrics) > 0  # they did contend
    assert sum(m.get("dnsctl_enactor_flip_failures_total", 0) for m in metrics) == 0


def test_a_corrupted_plan_is_rejected_and_dns_stays_as_it_is(lab):
    lab.start()
    lab.store.put(lab.plan(1))
    before = lab.wait_applied(1)
    fingerprints = {ep: frozenset(r for t in v.trees for r in t.records) for ep, v in before.items()}
    body = json.loads(lab.plan(2).to_json())
    body["endpoints"][0]["targets"][0]["weight"] = 7  # the checksum no longer matches
    lab.store.s3.put_object(Bucket=lab.bucket, Key=lab.store.key_for(2), Body=json.dumps(body).encode())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        statuses = [e.status() for e in lab.enactors.values()]
        if all(all("plan rejected" in (ep["last_error"] or "") for ep in st["endpoints"].values()) for st in statuses):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"plan 2 not rejected everywhere: {statuses}")
    time.sleep(1.0)
    after = lab.views()
    for ep, view in after.items():
        assert view.active_version == 1 and frozenset(r for t in view.trees for r in t.records) == fingerprints[ep]
    metrics = [e.metrics() for e in lab.enactors.values()]
    assert all(m.get("dnsctl_enactor_plans_rejected_total", 0) >= 3 for m in metrics)
    rejected = [ev for name in lab.enactors for ev in lab.events(name) if ev["event"] == "plan_rejected"]
    assert rejected and all("sha256" in ev["reason"] or "checksum" in ev["reason"] for ev in rejected)
    # The enactors move on when a valid newer plan arrives, and the rejection stops being reported.
    lab.store.put(lab.plan(3))
    lab.wait_applied(3)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        errors = [ep["last_error"] for e in lab.enactors.values() for ep in e.status()["endpoints"].values()]
        if not any(errors):
            break
        time.sleep(0.2)
    assert not any(errors), f"last_error still set after recovery: {errors}"


def test_frozen_enactors_apply_nothing_until_thawed(lab):
    lab.start(names=ENACTORS[:2])
    lab.store.put(lab.plan(1))
    lab.wait_applied(1)
    lab.store.freeze("investigating", by="test")
    time.sleep(0.6)
    lab.store.put(lab.plan(2))
    time.sleep(2.0)
    assert all(v.active_version == 1 for v in lab.views().values())
    statuses = [e.status() for e in lab.enactors.values()]
    assert all(st["frozen"] and st["state"] == "frozen" for st in statuses)
    lab.store.thaw(by="test")
    lab.wait_applied(2)


def test_guarded_cleanup_of_a_large_zone_counts_references_from_the_plans(lab):
    """A zone past one page (the dual-stack endpoint with 200 LBs) is cleaned up on the heads page
    and the plans behind its trees: the doomed trees and exactly the nodes only they reach go,
    every kept tree stays whole, and no enactor had to fall back to listing the zone."""
    lab.start(DNSCTL_ENACTOR_KEEP_PLANS="1")
    big = layout.root_name(lab.endpoints[1])
    for v in (1, 2, 3, 4):
        lab.store.put(lab.plan(v, big=200))
        lab.wait_applied(v)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        view = lab.views()[big]
        if {t.version for t in view.trees} == {3, 4}:
            break
        time.sleep(0.2)
    assert view.record_count > 300  # past one heads page: the targeted path
    assert {t.version for t in view.trees} == {3, 4} and all(t.complete for t in view.trees)
    reached = set().union(*(t.leaves for t in view.trees))
    assert {r.name for r in view.leaves} == reached, "a node no kept tree reaches was left behind"
    events = [ev for name in lab.enactors for ev in lab.events(name) if ev.get("endpoint") == big.rstrip(".")]
    assert any(ev["event"] == "cleanup_deleted" for ev in events)
    assert not any(ev["event"] == "nodes_not_recomputed" for ev in events)


def test_the_runner_reads_the_trees_plans_from_the_store_once(lab):
    """ReadPlans as the runner answers it, against the emulator's S3: each version is read once
    (plans never change), a version not in the store answers None, and a plan is this endpoint's part."""
    ep = layout.root_name(lab.endpoints[0])
    for v in (1, 2):
        lab.store.put(lab.plan(v))
    reads: list[int] = []
    get = lab.store.get
    lab.store.get = lambda version: (reads.append(version), get(version))[1]
    source = PlanSource(lab.store, max_age_s=0.1)
    first = source.endpoint_plans(ep, (1, 2, 9), 0.0)
    again = source.endpoint_plans(ep, (1, 2), 0.0)
    assert isinstance(first, p.PlansRead) and isinstance(again, p.PlansRead)
    assert dict(first.endpoints) == {1: lab.plan(1).endpoint(ep), 2: lab.plan(2).endpoint(ep), 9: None}
    assert dict(again.endpoints) == {1: lab.plan(1).endpoint(ep), 2: lab.plan(2).endpoint(ep)}
    assert sorted(reads) == [1, 2, 9]
