"""Replay a counterexample against a real Route 53 endpoint and show it through the DNS data plane.

The counterexample's steps are carried out one by one with boto3 against whatever Route 53 and
S3 the standard configuration names (AWS_ENDPOINT_URL: the emulator, locally): hosted zones
are created for the endpoints, plans are written to a fresh plan-store bucket, and every
machine runs the protocol core exactly as the enactor runner does: its ListRecords is a real
ListResourceRecordSets, its SubmitBatch a real ChangeResourceRecordSets, its ReadNewestPlan a
real read of the plan store. The model runs beside it in lockstep; after every step the
outcome (accepted / rejected) and the endpoint records must agree with the model's, so a
replay also checks that the in-memory engine and the real endpoint agree on this run.

What is the model's and not Route 53's: the clock (each step's `now` is the model's, moved one
lock TTL on by a lease expiry), the fresh tree ids, and every fault the checker injects, which the
core is handed as the model's observation (at the replay's clock), as the runner's own fault
injection or its failing transport would hand it:
- a lock loss: the rejection, without a request;
- the freeze switch: Frozen, nothing carried out;
- a failed request (plan read, listing or batch): RequestFailed, nothing carried out;
- a lost reply: the batch IS submitted (Route 53 applies or rejects it, and the step's outcome,
  lost_reply_accepted or lost_reply_rejected, is Route 53's), then the core gets RequestFailed;
- a change left PENDING: Insync(False). The emulator's GetChange may well say INSYNC already; the
  model's PENDING is the runner's INSYNC wait giving up (its propagation timeout), not a status
  Route 53 reports, so no GetChange is asked for that step.
Without --insync-waits the model's propagation is instant (no change id is waited for); with it,
a wait the model lets end INSYNC is a real GetChange.

The plan object that fails the schema (`("publish", "invalid")`) is written as a broken planner
would write it: raw bytes that are not a plan, under the next version's key (store.key_for), where
the store's newest() probes forward and finds it. The core is fed what the runner feeds it, through
the runner's own plan source (enactor.runner.PlanSource): PlanRead(None, InvalidPlan(key, reason)).
The model numbers the valid plan that follows it with that same version (a real planner would
number past the bad object), so before that plan is put the bad object is deleted (the bucket is
versioned: it stays in the history) and the store's own put writes the plan in its place.

At the end each endpoint is read back as the DNS server reads it (services/dns/snapshot.py) and
asked for its address through the data plane's pure answer function (services/dns/answer.py):
the broken state shows as NOERROR with no address, as `dig` showed on 20 October.
"""

from __future__ import annotations

import random
import re
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from enactor import layout
from enactor import protocol as default_core
from enactor.runner import REJECTION_CODES, PlanSource, rejection_messages
from lab.checker import trace
from lab.checker.world import (
    EXPIRE,
    FAIL,
    FREEZE,
    LOCK_TTL_S,
    LOSE_LOCK,
    LOST_REPLY,
    PENDING,
    PUBLISH,
    PUBLISH_INVALID,
    REGION,
    T0,
    Bounds,
    Label,
    World,
    damage_batches,
)
from services.dns.answer import leaf_distribution, resolve
from services.dns.snapshot import Snapshot, read_served_zone, read_zone
from services.plan.store import PlanStore, StoreError
from services.route53.records import Change, ChangeBatch, RecordSet
from services.zones import bare_zone_id


class ReplayDiverged(Exception):
    """The real endpoint did not do what the model did (the report says at which step and how)."""


@dataclass
class ReplayedStep:
    n: int
    text: str
    expected: str  # the model's outcome ("accepted", "rejected", "lost_lock", "lost_reply_accepted", "failed", ... or "")
    got: str
    zone_agrees: bool


@dataclass
class EndpointEnd:
    endpoint: str
    zone_id: str
    rcode: str
    addresses: list[str]
    missing_share: float  # share of answers (over weighted branches) that end at a missing record
    root_tree: str | None
    root_tree_exists: bool


@dataclass
class ReplayResult:
    steps: list[ReplayedStep] = field(default_factory=list)
    endpoints: list[EndpointEnd] = field(default_factory=list)
    bucket: str = ""
    model_final: list[dict[str, Any]] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return all(s.expected == s.got and s.zone_agrees for s in self.steps)


# Faults the model decides alone: nothing reaches Route 53 or S3, the core gets the model's
# observation, and the step's outcome is the one the fault names.
_NOTHING_CARRIED_OUT = {FREEZE: "frozen", FAIL: "failed", PENDING: "pending"}
# What a broken planner writes where the next plan goes: JSON, but not a plan.
INVALID_PLAN_BODY = b'{"note": "not a plan: written by dnsctl check --replay for the checker\'s invalid plan object"}'

_LOCK_FIELDS = re.compile(r"expires=\d+")
_CREATED = re.compile(r"created=[^\"]*")


def _comparable(records, endpoint: str) -> frozenset:
    """An endpoint's records without what the model leaves to Route 53 or keeps to itself: the
    apex SOA/NS, hosted zone ids in aliases, the clock inside lock leases and tree metadata."""
    out = set()
    for r in records:
        if r.name == endpoint and r.type in ("SOA", "NS"):
            continue
        values = tuple(sorted(_CREATED.sub("created=", _LOCK_FIELDS.sub("expires=", v)) for v in r.values))
        alias = (r.alias.dns_name, r.alias.evaluate_target_health) if r.alias else None
        out.add((r.name, r.type, r.set_identifier, r.weight, r.ttl, values, alias))
    return frozenset(out)


class Replayer:
    def __init__(self, bounds: Bounds, labels: list[Label], *, continuation: list[Label] = (),
                 core: types.ModuleType = default_core, route53=None, s3=None, echo: Callable[[str], None] = print):
        if route53 is None or s3 is None:
            from services.aws_clients import route53_client, s3_client

            route53 = route53 or route53_client()
            s3 = s3 or s3_client()
        self.world = World(bounds, core)
        self.core = core
        self.labels = list(labels)
        self.continuation = list(continuation)
        self.route53 = route53
        self.s3 = s3
        self.echo = echo
        self.zone_ids: list[str] = []
        self.result = ReplayResult()
        self.plans: PlanSource | None = None  # the runner's plan source over the replay's store (run)
        self._invalid_key: str | None = None  # where the invalid plan object is, while it is the newest

    # -- setting up ------------------------------------------------------------------------

    def _create_zones(self) -> None:
        world = self.world
        for ep in world.endpoints:
            reply = self.route53.create_hosted_zone(Name=ep, CallerReference=f"dnsctl-check-{uuid.uuid4().hex}")
            zone_id = bare_zone_id(reply["HostedZone"]["Id"])
            self.zone_ids.append(zone_id)
            if world.bounds.start == "damaged":
                for changes in damage_batches(self.core, world.settings[0], ep, zone_id, world.plans):
                    self._submit(zone_id, changes, "dnsctl check: the damaged start")
        self.echo(f"hosted zones: {', '.join(f'{ep.rstrip(chr(46))} = {z}' for ep, z in zip(world.endpoints, self.zone_ids, strict=True))}")

    def _create_store(self) -> PlanStore:
        bucket = f"dnsctl-check-{uuid.uuid4().hex[:12]}"
        store = PlanStore(bucket, REGION, s3=self.s3)
        store.ensure_bucket()
        self.result.bucket = bucket
        if self.world.bounds.start == "damaged":
            for plan in self.world.plans:
                store.put(plan)
        self.echo(f"plan store: s3://{bucket}/{store.prefix}")
        return store

    def _submit(self, zone_id: str, changes, comment: str) -> str:
        reply = self.route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=ChangeBatch(tuple(changes), comment).to_boto())
        return str(reply.get("ChangeInfo", {}).get("Id", ""))

    # -- one machine step against the real endpoint ----------------------------------------

    def _perform(self, store: PlanStore, k: int, machine: Any, now: float, fresh: str | None, fault: str, injected) -> tuple[Any, str]:
        """Carry out machine k's request; `fault` is the step's injected fault ("" for none) and
        `injected` the model's observation for it (None without a fault)."""
        core = self.core
        j = k % self.world.n_endpoints
        request = core.request_of(machine)
        if fault in _NOTHING_CARRIED_OUT:
            # The freeze switch, a request failing on its way out, the INSYNC wait timing out: the
            # model's observation, at the replay's clock. (PENDING asks no GetChange: the emulator
            # may already say INSYNC; the model's PENDING is the runner's wait giving up.)
            return replace(injected, now=now), _NOTHING_CARRIED_OUT[fault]
        if isinstance(request, core.ReadNewestPlan):
            return self._read_newest_plan(), ""
        if isinstance(request, core.ListRecords):
            zone, _ = read_zone(self.route53, self.zone_ids[j], self.world.endpoints[j])
            return core.RecordsListed(tuple(zone), now, fresh), ""
        if isinstance(request, core.ReadRecords):
            pages = [self.route53.list_resource_record_sets(HostedZoneId=self.zone_ids[j], StartRecordName=n, StartRecordType=t, MaxItems=str(m))
                     for n, t, m in request.queries]
            # The zone's size as the runner asks it (GetHostedZone), for a targeted build's quota check.
            size = None
            if getattr(request, "zone_size", False):
                size = int(self.route53.get_hosted_zone(Id=self.zone_ids[j])["HostedZone"]["ResourceRecordSetCount"])
            records = tuple(RecordSet.from_boto(r) for pg in pages for r in pg.get("ResourceRecordSets", []))
            return core.RecordsRead(records, now, fresh, size), ""
        if isinstance(request, core.ReadPlans):
            # The plans behind the trees (the clean-up's reference count), read back from the store.
            ep = self.world.endpoints[j]
            endpoints = tuple((v, store.get(v).endpoint(ep)) for v in request.versions)
            return core.PlansRead(endpoints, now), ""
        if isinstance(request, core.SubmitBatch):
            if fault == LOSE_LOCK:
                return core.BatchRejected(injected.messages, injected.error_code, now), "lost_lock"
            obs, outcome = self._submit_batch(j, request, now)
            if fault == LOST_REPLY:
                # Route 53 carried the batch out (or refused it): that outcome is its own. The reply
                # never reaches the enactor, so the core gets the model's RequestFailed.
                return replace(injected, now=now), f"lost_reply_{outcome}"
            return obs, outcome
        if isinstance(request, core.AwaitInsync):
            states = {self.route53.get_change(Id=c)["ChangeInfo"]["Status"] for c in request.change_ids}
            return core.Insync(states <= {"INSYNC"}, now), ""
        return core.Woke(now), ""

    def _submit_batch(self, j: int, request: Any, now: float) -> tuple[Any, str]:
        """A real ChangeResourceRecordSets: Route 53's acceptance or rejection, as the core's observation."""
        core = self.core
        try:
            change_id = self._submit(self.zone_ids[j], request.changes, request.comment)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code not in REJECTION_CODES:
                raise
            return core.BatchRejected(rejection_messages(exc), code, now), "rejected"
        # As the model: the INSYNC wait only with --insync-waits (a build batch's change id).
        waits = self.world.bounds.insync_waits and request.purpose == "build"
        return core.BatchAccepted(now, change_id if waits else ""), "accepted"

    def _read_newest_plan(self) -> Any:
        """The newest plan as the runner reads it (its PlanSource, never cached here): a plan, none
        yet, or PlanRead(None, InvalidPlan(key, reason)) for an object that fails the schema."""
        obs = self.plans.read()
        if isinstance(obs, default_core.RequestFailed):
            # The runner would back off; the model read the store. Not a divergence of the core: S3 failed.
            raise StoreError(obs.error)
        if self.core is not default_core:
            # A copy of the core (tests check mutated copies) dispatches on its own classes.
            invalid = obs.invalid and self.core.InvalidPlan(obs.invalid.key, obs.invalid.reason)
            obs = self.core.PlanRead(obs.plan, invalid)
        return obs

    def _publish_invalid(self, store: PlanStore, version: int) -> None:
        """An object that fails the schema under `version`'s key, as a broken planner writes it
        (never over a plan: If-None-Match, as the store's put); newest() probes forward onto it."""
        key = store.key_for(version)
        self.s3.put_object(Bucket=store.bucket, Key=key, Body=INVALID_PLAN_BODY, ContentType="application/json", IfNoneMatch="*")
        self._invalid_key = key

    def _publish(self, store: PlanStore, plan) -> None:
        """The planner's next plan. The model gives the plan after the invalid object the same
        version, so the bad object is deleted first (kept in the versioned bucket's history)."""
        if self._invalid_key == store.key_for(plan.version):
            self.s3.delete_object(Bucket=store.bucket, Key=self._invalid_key)
            self._invalid_key = None
        store.put(plan)

    def _step_machine(self, store, machines: list, k: int, now: float, fresh, fault: str = "", injected=None) -> tuple[str, Any]:
        """Carry out machine k's request and step its core: (the outcome, what the core was fed)."""
        core, world = self.core, self.world
        e = k // world.n_endpoints
        obs, outcome = self._perform(store, k, machines[k], now, fresh, fault, injected)
        new, request, _ = core.step(world.settings[e], machines[k], obs)
        if isinstance(request, core.Sleep):
            new, _, _ = core.step(world.settings[e], new, core.Woke(now))  # as the model: wakes at once
        machines[k] = new
        return outcome, obs

    def _plan_read_difference(self, model_obs: Any, obs: Any) -> str:
        """"" when a plan read found what the model's store holds (the same plan, none, or the
        invalid object); else what each found. Only a read tells the invalid object from no plan:
        the core polls on both, so no zone would show it."""
        core = self.core
        if not isinstance(model_obs, core.PlanRead):
            return ""

        def found(o: Any) -> str:
            if not isinstance(o, core.PlanRead):
                return type(o).__name__
            return "an invalid object" if o.invalid is not None else f"plan {o.plan.version}" if o.plan is not None else "no plan"

        ours, theirs = found(obs), found(model_obs)
        return "" if ours == theirs else f" (but the plan read found {ours}, the model's {theirs})"

    # -- the whole run ---------------------------------------------------------------------

    def run(self) -> ReplayResult:
        world, core = self.world, self.core
        self._create_zones()
        store = self._create_store()
        self.plans = PlanSource(store, max_age_s=0)  # every plan read goes to S3, as the model's does
        machines = [core.start(world.endpoints[k % world.n_endpoints], self.zone_ids[k % world.n_endpoints])[0]
                    for k in range(len(world.initial.machines))]
        model = world.initial
        if not all(self._zone_agrees(model, j) for j in range(world.n_endpoints)):
            raise ReplayDiverged("the start state in Route 53 differs from the model's")
        published = model.published
        expiries = 0
        for n, label in enumerate(self.labels + self.continuation, start=1):
            if n == len(self.labels) + 1:
                self.echo("  then every enactor in turn, without new plans:")
            if label not in set(world.labels(model)):
                raise ReplayDiverged(f"step {n}: {label} cannot happen in the model at that point (was the file edited?)")
            step = trace.describe(world, model, label, n)
            after, move, knocked = world.apply(model, label)
            now = float(T0 + expiries * LOCK_TTL_S)
            got = ""
            if label == PUBLISH:
                self._publish(store, world.plans[published])
                published += 1
            elif label == PUBLISH_INVALID:
                self._publish_invalid(store, published + 1)
            elif label == EXPIRE:
                expiries += 1
            else:
                k = label[1]
                # (a unit's targeted reads may start a tree as a listing may: the model's fresh id for both)
                fresh = world.fresh_tree_id(model, k) if world.machine(model.machines[k]).phase in ("list", "read") else None
                # Where the model decides (an injected fault) the core gets the model's observation;
                # where Route 53 decides (every batch it accepts or rejects) the real endpoint's.
                fault = label[2]
                got, obs = self._step_machine(store, machines, k, now, fresh, fault, move.observation if fault else None)
                got += self._plan_read_difference(move.observation, obs)
                for k2, m2 in knocked:
                    knock, _ = self._step_machine(store, machines, k2, now, None)
                    if knock != m2.outcome:
                        got += f" (but {world.who(k2)[0]}'s pending batch was {knock or 'not submitted'})"
            expected = move.outcome if move is not None else ""
            agrees = all(self._zone_agrees(after, j) for j in range(world.n_endpoints))
            self.result.steps.append(ReplayedStep(n, step.text, expected, got, agrees))
            mark = "ok" if expected == got and agrees else "DIFFERS"
            what = f" [{got}]" if got else ""
            self.echo(f"  {n:>3}. {step.text}{what} ... {mark}")
            if mark != "ok":
                why = f"the model's outcome was {expected or '-'}, the replay's {got.strip() or '-'}" if expected != got else "the zone differs from the model's"
                raise ReplayDiverged(f"step {n}: {why}")
            model = after
        self.result.model_final = [trace.endpoint_summary(world, model, j) for j in range(world.n_endpoints)]
        self._read_back()
        return self.result

    def _zone_agrees(self, state, j: int) -> bool:
        ep = self.world.endpoints[j]
        zone, _ = read_zone(self.route53, self.zone_ids[j], ep)
        return _comparable(zone, ep) == _comparable(self.world.zone(state.zones[j]).zone, ep)

    def _read_back(self) -> None:
        """Each endpoint as the DNS server reads it, and the answer the data plane gives."""
        world = self.world
        for j, ep in enumerate(world.endpoints):
            served = read_served_zone(self.route53, self.zone_ids[j], ep)
            snapshot = Snapshot.of([served])
            answer = resolve(snapshot, ep, "A", random.Random(0))
            leaves = leaf_distribution(snapshot, ep, "A")
            missing = sum(x.probability for x in leaves if x.missing or not x.values) if leaves else 1.0
            view = layout.read_endpoint(ep, served.zone)
            root = next(iter(view.root_targets().values()), None)
            tree = view.tree(root)
            self.result.endpoints.append(
                EndpointEnd(ep.rstrip("."), self.zone_ids[j], answer.rcode.name,
                            [r.value for r in answer.answers if r.type == "A"], missing, root, bool(tree and tree.complete))
            )

    def cleanup(self) -> None:
        """Delete the hosted zones and the bucket this replay made (best effort: it reports, never raises)."""
        for j, zone_id in enumerate(self.zone_ids):
            ep = self.world.endpoints[j]
            try:
                zone, _ = read_zone(self.route53, zone_id, ep)
                doomed = [r for r in zone if not (r.name == ep and r.type in ("SOA", "NS"))]
                if doomed:
                    self._submit(zone_id, [Change("DELETE", r) for r in doomed], "dnsctl check: replay clean-up")
                self.route53.delete_hosted_zone(Id=zone_id)
            except ClientError as exc:
                self.echo(f"could not delete hosted zone {zone_id}: {exc}")
        if self.result.bucket:
            try:
                bucket = self.result.bucket
                for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
                    for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                        self.s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
                self.s3.delete_bucket(Bucket=bucket)
            except ClientError as exc:
                self.echo(f"could not delete bucket {self.result.bucket}: {exc}")
