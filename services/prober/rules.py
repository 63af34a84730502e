"""When each alarm's condition holds, from what the prober observed. Pure: observations and a
timestamp in, conditions out; the little memory the rules need (consecutive empty probes, the
highest plan version seen, since when an endpoint lags) lives in `Rules`.

- RootAliasDangling: from Route 53 (the control API, never from DNS answers): a root alias of
  the endpoint names a record that does not exist.
- EnactorStuck: an enactor's /status says `stuck` (overall or for an endpoint), or an endpoint's
  consecutive flip failures reached `stuck_after`.
- StalePlanApplied: the plan version behind the endpoint's root (its tree's metadata) went below
  the highest one this prober has seen, and the endpoint's `_applied` record does not say an
  operator restored it (a `restore=` or `operator=` field), nor has an operator acknowledged it
  through the API. It clears when the version is back at or above that mark.
- EndpointEmpty: `empty_after` probes in a row answered with zero addresses (NOERROR or
  NXDOMAIN) for a record type the root serves; it clears after `clear_after` probes in a row
  with addresses. Timeouts and SERVFAIL say nothing either way.
- EndpointBlocked: an enactor's /status says an endpoint's newest plan was refused by Route 53
  for its content or cannot fit the zone quota (`blocked`): the last good tree keeps serving,
  and the alarm names the plan and the reason. It clears when a newer plan flips.
- PlanLagHigh: the newest published plan is `lag_versions` or more ahead of the endpoint's
  applied version, or has been ahead at all for `lag_seconds`.
- PlanStoreBehind: the plan store's newest version (the planner's status) is below the version
  the endpoint has applied, two rounds in a row: plans were deleted or the bucket re-created, and enactors would skip
  every plan numbered from the store. The planner numbers above Route 53 when it sees this.
- EndpointAnswerError: `empty_after` rounds in a row in which DNS answered REFUSED, SERVFAIL (or
  any rcode but NOERROR/NXDOMAIN) for the endpoint; clears after `clear_after` good rounds.
- ProberBlind (subject "prober"): for `blind_after_s`, the prober could not probe: Route 53 was
  never read or its snapshot is older than `route53_stale_s`, there is no endpoint to probe, or
  every probe of the round went unanswered. A prober that probes nothing never looks healthy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.cells.naming import accounts_zone, owner_cell
from services.dns.explain import EndpointView
from services.prober.alarms import Condition
from services.prober.sources import EnactorStatus, PlannerStatus
from services.stack import DEFAULT_REGION

RESTORE_FIELDS = ("restore", "operator", "restored_by")


@dataclass(frozen=True)
class RuleSettings:
    stuck_after: int = 3
    empty_after: int = 2
    clear_after: int = 5
    lag_versions: int = 5
    lag_seconds: float = 60.0
    blind_after_s: float = 5.0
    route53_stale_s: float = 15.0


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One DNS question about an endpoint and what came back (rcode None: no answer in time)."""

    endpoint: str
    record_type: str
    rcode: str | None
    addresses: int
    seconds: float


def endpoint_key(name: str) -> str:
    return name.rstrip(".").lower()


@dataclass
class _Streaks:
    """Per endpoint, bad and good rounds in a row: active after `empty_after` bad rounds, cleared
    after `clear_after` good ones (the same hysteresis for empty answers and for error answers)."""

    bad: dict[str, int] = field(default_factory=dict)
    good: dict[str, int] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)

    def observe(self, endpoint: str, is_bad: bool, settings: RuleSettings) -> None:
        runs, other = (self.bad, self.good) if is_bad else (self.good, self.bad)
        runs[endpoint] = runs.get(endpoint, 0) + 1
        other[endpoint] = 0
        if endpoint in self.active:
            if self.good[endpoint] >= settings.clear_after:
                self.active.discard(endpoint)
        elif self.bad[endpoint] >= settings.empty_after:
            self.active.add(endpoint)


@dataclass
class Rules:
    settings: RuleSettings = field(default_factory=RuleSettings)
    _empty: _Streaks = field(default_factory=lambda: _Streaks())
    _highest: dict[str, int] = field(default_factory=dict)
    _lag_since: dict[str, float] = field(default_factory=dict)
    _last_applied: dict[str, int] = field(default_factory=dict)
    _behind_run: dict[str, int] = field(default_factory=dict)
    _errors: _Streaks = field(default_factory=lambda: _Streaks())
    _blind_since: float | None = None
    cannot_probe: str | None = None  # why the last round could not probe, undebounced (None: it could)

    # -- Route 53 --------------------------------------------------------------------------------

    def dangling(self, views: list[EndpointView]) -> dict[str, Condition]:
        out = {}
        for v in views:
            missing = v.dangling
            if missing:
                trees = sorted({a.tree_id or a.target or "" for a in missing})
                applied = f", _applied says plan {v.applied.version}" if v.applied else ""
                out[endpoint_key(v.endpoint)] = Condition(
                    detail=f"root {'/'.join(a.record_type for a in missing)} alias -> {', '.join(trees)}, which does not "
                    f"exist: DNS answers NOERROR with zero addresses{applied}",
                    facts=(("missing_tree", trees[0] if len(trees) == 1 else trees),),
                )
        return out

    def acknowledge_restore(self, endpoint: str) -> None:
        """An operator says the lower version is intended: it becomes the new mark."""
        self._highest.pop(endpoint_key(endpoint), None)

    def stale(self, views: list[EndpointView]) -> dict[str, Condition]:
        out = {}
        for v in views:
            key = endpoint_key(v.endpoint)
            version = v.active_version
            if version is None:
                continue
            if _operator_restored(v):
                self._highest[key] = version
                continue
            high = self._highest.get(key)
            if high is None or version >= high:
                self._highest[key] = version
                continue
            tree = v.active.tree_id if v.active else "?"
            out[key] = Condition(
                detail=f"applied plan went down from {high} to {version} (root -> {tree}) without an operator restore",
                facts=(("applied_version", version), ("highest_version", high)),
            )
        return out

    # -- DNS probes -----------------------------------------------------------------------------

    def empty(self, probes: list[ProbeResult], served_types: dict[str, tuple[str, ...]]) -> tuple[dict[str, Condition], set[str]]:
        """(conditions, endpoints evaluated). `served_types`: endpoint -> the root's record types."""
        by_endpoint: dict[str, list[ProbeResult]] = {}
        for p in probes:
            by_endpoint.setdefault(endpoint_key(p.endpoint), []).append(p)
        evaluated: set[str] = set()
        for ep, results in by_endpoint.items():
            types = served_types.get(ep, ())
            known = [r for r in results if r.rcode in ("NOERROR", "NXDOMAIN") and r.record_type in types]
            if not known:
                continue
            evaluated.add(ep)
            self._empty.observe(ep, any(r.addresses == 0 for r in known), self.settings)
        out = {}
        for ep in self._empty.active:
            types = "/".join(served_types.get(ep, ()))
            out[ep] = Condition(detail=f"DNS returns zero addresses for {ep} ({types}) over {self._empty.bad.get(ep, 0)} probes in a row")
        return out, evaluated

    def answer_errors(self, probes: list[ProbeResult]) -> tuple[dict[str, Condition], set[str]]:
        """(conditions, endpoints evaluated): REFUSED/SERVFAIL answers, counted per round per endpoint."""
        by_endpoint: dict[str, list[ProbeResult]] = {}
        for p in probes:
            if p.rcode is not None:  # no answer at all says nothing here (ProberBlind covers silence)
                by_endpoint.setdefault(endpoint_key(p.endpoint), []).append(p)
        last: dict[str, str] = {}
        for ep, results in by_endpoint.items():
            bad = [r for r in results if r.rcode not in ("NOERROR", "NXDOMAIN")]
            if bad:
                last[ep] = "/".join(sorted({f"{r.record_type} {r.rcode}" for r in bad}))
            self._errors.observe(ep, bool(bad), self.settings)
        out = {
            ep: Condition(
                detail=f"DNS answers {last.get(ep, 'an error')} for {ep} over {self._errors.bad.get(ep, 0)} probes in a row",
                facts=(("answer", last.get(ep)),),
            )
            for ep in self._errors.active
        }
        return out, set(by_endpoint)

    def blind(
        self, now: float, *, snapshot_age_s: float | None, endpoints: int, probes: list[ProbeResult], dns: str
    ) -> dict[str, Condition]:
        """ProberBlind's condition: why the prober cannot probe, once that has lasted `blind_after_s`."""
        if snapshot_age_s is None:
            reason = "Route 53 has not been read yet"
        elif snapshot_age_s > self.settings.route53_stale_s:
            reason = f"Route 53 could not be read for {snapshot_age_s:.0f}s (probing from a stale snapshot)"
        elif endpoints == 0:
            reason = "no endpoint to probe: Route 53 holds no zone with a root alias"
        elif probes and all(p.rcode is None for p in probes):
            reason = f"the DNS server {dns} answered none of {len(probes)} probes"
        else:
            self._blind_since = self.cannot_probe = None
            return {}
        self.cannot_probe = reason  # at once (readiness); the alarm waits blind_after_s (no flapping)
        if self._blind_since is None:
            self._blind_since = now
        if now - self._blind_since < self.settings.blind_after_s:
            return {}
        return {"prober": Condition(detail=f"cannot probe: {reason} (for {now - self._blind_since:.0f}s)",
                                    facts=(("reason", reason),))}

    # -- enactors and planner ------------------------------------------------------------------

    def stuck(self, statuses: list[EnactorStatus]) -> tuple[dict[str, Condition], set[str]]:
        out: dict[str, Condition] = {}
        evaluated = set()
        for s in statuses:
            if not s.reachable:
                continue
            evaluated.add(s.enactor)
            stuck_eps = [
                e for e in s.endpoints if e.state == "stuck" or e.flip_failures >= self.settings.stuck_after
            ]
            if s.state != "stuck" and not stuck_eps:
                continue
            parts = [
                f"{e.endpoint}: flip of plan {e.plan_version if e.plan_version is not None else '?'} failed "
                f"{e.flip_failures} times in a row" + (f" ({e.last_error})" if e.last_error else "")
                for e in stuck_eps
            ]
            out[s.enactor] = Condition(
                detail=f"{s.enactor} is stuck" + (": " + "; ".join(parts) if parts else f" (state {s.state})"),
                endpoints=tuple(e.endpoint for e in stuck_eps),
                facts=(("flip_failures", max((e.flip_failures for e in stuck_eps), default=0)),),
            )
        return out, evaluated

    def blocked(self, statuses: list[EnactorStatus]) -> tuple[dict[str, Condition], set[str]]:
        out: dict[str, Condition] = {}
        evaluated: set[str] = set()
        for s in statuses:
            if not s.reachable:
                continue
            for e in s.endpoints:
                evaluated.add(e.endpoint)
                if e.blocked and e.endpoint not in out:
                    b = e.blocked
                    out[e.endpoint] = Condition(
                        detail=f"plan {b.get('plan_version')} is not applied to {e.endpoint}: {b.get('event')} "
                        f"({b.get('reason')}); the last good tree keeps serving until a newer plan is accepted",
                        facts=(("plan_version", b.get("plan_version")), ("reason", b.get("reason")), ("enactor", s.enactor)),
                    )
        return out, evaluated

    def applied_version(self, view: EndpointView | None, endpoint: str, statuses: list[EnactorStatus]) -> int | None:
        """The best knowledge of an endpoint's applied version: Route 53 first, then the enactors."""
        candidates = []
        if view is not None:
            if view.applied is not None:
                candidates.append(view.applied.version)
            if view.active_version is not None:
                candidates.append(view.active_version)
        for s in statuses:
            e = s.endpoint(endpoint) if s.reachable else None
            if e is not None and e.applied_version is not None:
                candidates.append(e.applied_version)
        key = endpoint_key(endpoint)
        if candidates:
            self._last_applied[key] = max(candidates)
        return self._last_applied.get(key)

    def _applied_versions(self, views: list[EndpointView], statuses: list[EnactorStatus]) -> dict[str, int]:
        """endpoint -> best known applied version, for the endpoints that have one."""
        out = {}
        for v in views:
            key = endpoint_key(v.endpoint)
            applied = self.applied_version(v, key, statuses)
            if applied is not None:
                out[key] = applied
        return out

    def lag(
        self, planner: PlannerStatus | None, views: list[EndpointView], statuses: list[EnactorStatus], now: float
    ) -> tuple[dict[str, Condition], set[str]] | None:
        """None when the planner cannot be read (PlanLagHigh keeps its state)."""
        if planner is None or not planner.reachable or planner.newest_version is None:
            return None
        out: dict[str, Condition] = {}
        evaluated = set()
        for key, applied in self._applied_versions(planned_by(planner, views), statuses).items():
            evaluated.add(key)
            behind = planner.newest_version - applied
            if behind <= 0:
                self._lag_since.pop(key, None)
                continue
            since = self._lag_since.setdefault(key, now)
            if behind >= self.settings.lag_versions or now - since >= self.settings.lag_seconds:
                out[key] = Condition(
                    detail=f"applied plan {applied} is {behind} behind the newest plan {planner.newest_version} "
                    f"(behind for {now - since:.0f}s)",
                    facts=(("applied_version", applied), ("newest_version", planner.newest_version), ("lag", behind)),
                )
        return out, evaluated


    def store_behind(
        self, planner: PlannerStatus | None, views: list[EndpointView], statuses: list[EnactorStatus]
    ) -> tuple[dict[str, Condition], set[str]] | None:
        """None when the planner cannot be read, or cannot read its store (PlanStoreBehind keeps its
        state): a store it cannot read says "no newest version", which is not "behind"."""
        if planner is None or not planner.reachable or planner.store_ok is False:
            return None
        out: dict[str, Condition] = {}
        evaluated = set()
        for key, applied in self._applied_versions(planned_by(planner, views), statuses).items():
            evaluated.add(key)
            store = planner.newest_version or 0
            # Two rounds in a row: a plan published and applied between reading the planner and
            # reading Route 53 makes one round look behind.
            self._behind_run[key] = self._behind_run.get(key, 0) + 1 if store < applied else 0
            if self._behind_run[key] >= 2:
                out[key] = Condition(
                    detail=f"the plan store's newest plan {planner.newest_version} is below the applied plan {applied}",
                    facts=(("store_version", planner.newest_version), ("applied_version", applied)),
                )
        return out, evaluated

def planned_by(planner: PlannerStatus, views: list[EndpointView]) -> list[EndpointView]:
    """The endpoints whose plans this planner writes: its cell's, or (regional) those of no cell.
    A cell's versions are its own sequence, so comparing them with another planner's means nothing."""
    region = planner.region or DEFAULT_REGION
    mapped = accounts_zone(region)  # the cell map's zone: numbered by the map's own stream
    return [v for v in views if owner_cell(v.endpoint, region) == planner.cell and endpoint_key(v.endpoint) != mapped]


def _operator_restored(view: EndpointView) -> bool:
    # AppliedValue keeps version and tree only; an operator's restore marks the record itself.
    return any(f in view.applied_fields for f in RESTORE_FIELDS)
