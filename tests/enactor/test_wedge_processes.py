"""The wedge cases of issue 11 against real processes: an emulator with a small zone quota, three
guarded enactors, plans in its S3, a DNS server answering from its Route 53.

Four endpoints, each broken one way by plan 2, all healed by later plans:
- ep0: an LB with a repeated address (Route 53: Duplicate Resource Record);
- ep1: dual-stack -> A-only (AAAA must answer NOERROR with zero records, over real DNS);
- ep2: a tree that cannot fit the zone quota at all (150 LBs, quota 100 record sets); later
  plans that rewrite every weight fill the zone unless older trees are trimmed first;
- ep3: a 64-character LB id (the older layout's leaf label went over 63 characters).
Each case ends with the newest good plan served, and nothing is ever served half-built.
"""

from __future__ import annotations

import time

import dns.rcode
import pytest

from services.plan.model import Target
from tests.conftest import start_emulator
from tests.dns.dnsproc import start_dns, wait_for
from tests.enactor.test_enactor_processes import Lab, Watcher
from tests.enactor.world import endpoint_plan, make_plan

QUOTA = 100
LONG_ID = "lb-" + "l" * 61


@pytest.fixture(scope="module")
def small_quota(tmp_path_factory):
    emu = start_emulator(tmp_path_factory, "--max-record-sets-per-zone", str(QUOTA))
    yield emu
    emu.process.stop()


@pytest.fixture(scope="module")
def lab(small_quota, tmp_path_factory):
    import uuid

    lab = Lab(small_quota, uuid.uuid4().hex[:8], tmp_path_factory.mktemp("wedge"), n_endpoints=4)
    yield lab
    lab.stop()


def plan(lab: Lab, version: int, broken: bool):
    ep0, ep1, ep2, ep3 = lab.endpoints
    w = lambda i, v=version: 1 + (i * 7 + v) % 200  # noqa: E731 - every plan rewrites every weight
    first = endpoint_plan(ep0, 3, weight=w)
    if broken:
        dup = Target(lb_id="lb-dup", az="use1-az1", ipv4=("192.0.2.7", "192.0.2.7"), weight=5)
        first = first.model_copy(update={"targets": (*first.targets, dup)})
    second = endpoint_plan(ep1, 3, types=("A",) if version >= 2 else ("A", "AAAA"), weight=w)
    third = endpoint_plan(ep2, 150 if broken else 30, weight=w)
    fourth = endpoint_plan(ep3, 3, weight=w)
    if version >= 2:
        fourth = fourth.model_copy(update={"targets": (*fourth.targets, Target(lb_id=LONG_ID, az="use1-az2", ipv4=("192.0.2.64",), weight=9))})
    return make_plan(version, [first, second, third, fourth])


def served(lab: Lab) -> dict[str, int | None]:
    return {ep: v.active_version for ep, v in lab.views().items()}


def wait_served(lab: Lab, wanted: dict[str, int], timeout_s: float = 90.0) -> None:
    wait_for(lambda: all(served(lab)[ep] == v for ep, v in wanted.items()), timeout_s, f"served versions {wanted}", 0.3)


def test_every_wedge_case_ends_with_the_newest_good_plan_served(lab, tmp_path_factory):
    eps = [f"{ep}." for ep in lab.endpoints]
    with Watcher(lab.zones, lab.client, guard=True) as watcher:
        lab.start()
        lab.store.put(plan(lab, 1, broken=False))
        wait_served(lab, dict.fromkeys(eps, 1))
        server = start_dns(tmp_path_factory.mktemp("dns"), "--zone", lab.endpoints[1], "--refresh-ms", "100", zone=lab.endpoints[1],
                        env=lab.emulator.env())
        try:
            assert len(server.addresses(lab.endpoints[1], "AAAA")) == 1  # one weighted member per answer
            lab.store.put(plan(lab, 2, broken=True))
            wait_served(lab, {eps[1]: 2, eps[3]: 2})
            # The refused endpoints keep serving plan 1, and every enactor says why.
            def blocked() -> dict[str, str]:
                out = {}
                for e in lab.enactors.values():
                    for name, ep in e.status()["endpoints"].items():
                        if ep.get("blocked"):
                            out[name] = ep["blocked"]["reason"]
                return out
            reasons = wait_for(lambda: b if len(b := blocked()) == 2 else None, 60, "two blocked endpoints")
            assert reasons == {lab.endpoints[0]: "duplicate_address", lab.endpoints[2]: "zone_quota"}
            assert served(lab)[eps[0]] == 1 and served(lab)[eps[2]] == 1
            # Dual-stack -> A-only: AAAA answers NOERROR with zero records, A still answers.
            reply = wait_for(lambda: r if not (r := server.query(lab.endpoints[1], "AAAA")).answer else None, 15, "AAAA to empty")
            assert reply.rcode() == dns.rcode.NOERROR and reply.answer == []
            assert len(server.addresses(lab.endpoints[1], "A")) == 1
            view = lab.views()[eps[1]]
            assert [r.type for r in view.roots] == ["A"] and [r.type for r in view.rollbacks] == ["A"]
        finally:
            server.stop()
        # Rescue plans, each rewriting every weight: all four endpoints follow, the quota holds.
        for v in (3, 4, 5, 6):
            lab.store.put(plan(lab, v, broken=False))
            wait_served(lab, dict.fromkeys(eps, v))
        time.sleep(1.0)
    assert watcher.violations == []
    views = lab.views()
    for ep, view in views.items():
        assert view.record_count <= QUOTA and all(t.complete for t in view.trees), ep
    assert LONG_ID in {m.lb_id for m in views[eps[3]].active_tree.meta.members}
    events = [ev for name in lab.enactors for ev in lab.events(name)]
    refused = {(ev["endpoint"], ev["event"], ev.get("reason")) for ev in events if ev["event"] in ("plan_refused_by_route53", "plan_too_large")}
    assert refused == {(lab.endpoints[0], "plan_refused_by_route53", "duplicate_address"), (lab.endpoints[2], "plan_too_large", "zone_quota")}
    assert any(ev["event"] == "cleanup_deleted" and ev["endpoint"] == lab.endpoints[2] for ev in events)
    metrics = [e.metrics() for e in lab.enactors.values()]
    assert sum(m.get("dnsctl_enactor_plans_refused_total", 0) for m in metrics) >= 2
    # No blocked endpoint is left once newer plans flipped.
    assert all(not ep.get("blocked") for e in lab.enactors.values() for ep in e.status()["endpoints"].values())
