"""The soak's checker: samplers that watch a live stack all through the nemesis, and the verdict.

Two samplers, each a thread of its own so a hung read never slows the other:

- DNS, every 200 ms: every endpoint, every record type it serves, asked of the data plane over
  UDP as a customer would (lab/race/control.py's Control.ask), plus `_applied.<endpoint>` TXT,
  the version guarded mode writes with every flip (enactor/layout.py), read over DNS too: the
  version customers are being served.
- Route 53, every second: each endpoint's zone through the control API, read back with
  enactor/layout.py: the version behind the root alias, and whether the root dangles.

The properties (Jepsen's checker over the history the samplers kept):

- NoEmptyAnswer: no NOERROR/NXDOMAIN answer with zero addresses once the endpoint has been served;
  NoErrorAnswer: no REFUSED/SERVFAIL either (timeouts are counted and shown, not judged: on a
  busy two-core machine a paused emulator is not a DNS outage);
- the served version never decreases, over DNS and on Route 53;
- no lost fleet change: every acknowledged operator change is in the final desired fleet and the
  final plan (`lost_changes`, pure);
- convergence: after the nemesis stops, every endpoint serves the newest plan, over DNS and on
  Route 53, within the convergence timeout (`converge`).

Each violation keeps its time, so the verdict names the fault kinds active when it happened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from enactor import layout
from lab.race.control import Control, Endpoint
from lab.soak.nemesis import Fault, OperatorChange
from services.logs import get_logger

DNS_INTERVAL_S = 0.2
ROUTE53_INTERVAL_S = 1.0
DNS_TIMEOUT_S = 0.5
ATTRIBUTION_GRACE_S = 15.0  # a violation up to this long after a heal is laid at that fault's door
KEEP_VIOLATIONS = 200  # the first ones are kept with their detail; all are counted


@dataclass(frozen=True, slots=True)
class Violation:
    t: float  # seconds from the start of the nemesis
    prop: str  # NoEmptyAnswer, NoErrorAnswer, VersionNeverDecreases
    endpoint: str
    detail: str


@dataclass
class Tally:
    dns_queries: int = 0
    dns_answers: int = 0
    empty: int = 0
    errors: int = 0  # REFUSED, SERVFAIL, ...
    timeouts: int = 0
    dns_version_reads: int = 0
    dns_decreases: int = 0
    route53_reads: int = 0
    route53_failed_reads: int = 0
    route53_decreases: int = 0
    dangling_reads: int = 0


def dns_served_version(host: str, port: int, endpoint: str, timeout_s: float = DNS_TIMEOUT_S) -> tuple[str | None, int | None]:
    """(rcode, version) of `_applied.<endpoint>` TXT over DNS; rcode None: no answer in time."""
    query = dns.message.make_query(layout.applied_name(endpoint), dns.rdatatype.TXT)
    try:
        reply = dns.query.udp(query, host, port=port, timeout=timeout_s)
    except (dns.exception.DNSException, OSError):
        return None, None
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            for rdata in rrset:
                text = b"".join(rdata.strings).decode("ascii", errors="replace")
                value = layout.AppliedValue.parse(text)
                if value is not None:
                    return dns.rcode.to_text(reply.rcode()), value.version
    return dns.rcode.to_text(reply.rcode()), None


class Checker:
    """Runs both samplers from start() to stop(); `t0` is the nemesis's clock (time.monotonic())."""

    def __init__(self, control: Control, route53_control: Control, t0: float):
        self.control = control  # DNS and planner
        self.route53_control = route53_control  # a Route 53 client with short timeouts: a paused emulator must not stall it
        self.t0 = t0
        self.endpoints: list[Endpoint] = control.endpoints()
        self.tally = Tally()
        self.violations: list[Violation] = []
        self.violation_count: dict[str, int] = {}
        self.dns_version: dict[str, int] = {}
        self.route53_version: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(self._dns_round, DNS_INTERVAL_S), name="soak-dns", daemon=True),
            threading.Thread(target=self._loop, args=(self._route53_round, ROUTE53_INTERVAL_S), name="soak-route53", daemon=True),
        ]
        self.log = get_logger(component="soak")

    def start(self) -> Checker:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _violate(self, prop: str, endpoint: str, detail: str) -> None:
        v = Violation(round(self.now(), 2), prop, endpoint, detail)
        with self._lock:
            self.violation_count[prop] = self.violation_count.get(prop, 0) + 1
            if len(self.violations) < KEEP_VIOLATIONS:
                self.violations.append(v)
        if self.violation_count[prop] <= 20:
            self.log.error("soak_violation", prop=prop, endpoint=endpoint, detail=detail, t=v.t)

    def _loop(self, round_: Callable[[], None], interval_s: float) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                round_()
            except Exception as exc:  # noqa: BLE001 - a sampler never dies; its failure is logged
                self.log.warning("soak_sampler_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            self._stop.wait(max(0.0, interval_s - (time.monotonic() - started)))

    def _dns_round(self) -> None:
        host, port = self.control.stack.dns
        for ep in self.endpoints:
            for rtype in ep.record_types:
                a = self.control.ask(ep.name, rtype, timeout_s=DNS_TIMEOUT_S)
                with self._lock:
                    self.tally.dns_queries += 1
                    if a.rcode is None:
                        self.tally.timeouts += 1
                        continue
                    self.tally.dns_answers += 1
                    if a.empty:
                        self.tally.empty += 1
                    elif a.rcode != "NOERROR":
                        self.tally.errors += 1
                if a.empty:
                    self._violate("NoEmptyAnswer", ep.name, f"{rtype} {a.rcode} with 0 addresses")
                elif a.rcode != "NOERROR":
                    self._violate("NoErrorAnswer", ep.name, f"{rtype} {a.rcode}")
            rcode, version = dns_served_version(host, port, ep.name)
            if version is None:
                continue
            with self._lock:
                self.tally.dns_version_reads += 1
                last = self.dns_version.get(ep.name)
                self.dns_version[ep.name] = version if last is None else max(last, version)
                down = last is not None and version < last
                if down:
                    self.tally.dns_decreases += 1
            if down:
                self._violate("VersionNeverDecreases", ep.name, f"DNS served version {version} after {last}")

    def _route53_round(self) -> None:
        for ep in self.endpoints:
            try:
                view = self.route53_control.view(ep)
            except Exception:  # noqa: BLE001 - Route 53 down or throttled is a fault the nemesis made
                with self._lock:
                    self.tally.route53_failed_reads += 1
                continue
            version = view.active_version
            with self._lock:
                self.tally.route53_reads += 1
                if view.roots and view.dangling:
                    self.tally.dangling_reads += 1
                last = self.route53_version.get(ep.name)
                down = version is not None and last is not None and version < last
                if version is not None:
                    self.route53_version[ep.name] = version if last is None else max(last, version)
                if down:
                    self.tally.route53_decreases += 1
            if down:
                self._violate("VersionNeverDecreases", ep.name, f"Route 53 root serves version {version} after {last}")
            if view.roots and view.dangling:
                self._violate("NoEmptyAnswer", ep.name, "Route 53 root alias dangles")


def served_everywhere(control: Control, route53_control: Control, endpoints: Iterable[Endpoint]) -> dict[str, tuple[int | None, int | None]]:
    """Per endpoint: (version behind the Route 53 root, version served over DNS)."""
    host, port = control.stack.dns
    out = {}
    for ep in endpoints:
        try:
            r53 = route53_control.view(ep).active_version
        except Exception:  # noqa: BLE001 - not converged yet if Route 53 cannot be read
            r53 = None
        out[ep.name] = (r53, dns_served_version(host, port, ep.name)[1])
    return out


@dataclass
class Convergence:
    converged: bool
    seconds: float  # from the heal to the first moment everything served the newest plan (or the timeout)
    version: int | None
    last_seen: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)


def converge(control: Control, route53_control: Control, at_least: int, timeout_s: float, guarded: bool = True) -> Convergence:
    """Wait until every endpoint serves plan `at_least` or a newer one on Route 53 and, in guarded
    mode, over DNS (its `_applied` record); the clock starts now.

    `at_least` is the plan published once the nemesis stopped, so it carries every change: with
    the planner publishing every few seconds (and traffic drift making every plan new), "serves
    exactly the newest plan" would be a moving target, met or missed by luck."""
    started = time.monotonic()
    seen: dict[str, tuple[int | None, int | None]] = {}
    while time.monotonic() - started < timeout_s:
        seen = served_everywhere(control, route53_control, control.endpoints())

        def serves(v: int | None) -> bool:
            return v is not None and v >= at_least

        if all(serves(r53) and (serves(dns_v) or not guarded) for r53, dns_v in seen.values()):
            return Convergence(True, round(time.monotonic() - started, 2), min(r53 for r53, _ in seen.values() if r53 is not None), seen)
        time.sleep(0.25)
    return Convergence(False, round(time.monotonic() - started, 2), at_least, seen)


# -- lost changes (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    change: OperatorChange
    status: str  # acknowledged (2xx); refused (4xx) or not_made (planner never reached): not made; unanswered: may be made
    t: float
    detail: str = ""


def _value(change: OperatorChange) -> bool | int:
    return change.action == "drain" if change.action in ("drain", "undrain") else int(change.capacity or 0)


def expected_values(outcomes: Iterable[ChangeOutcome], initial: dict[str, bool | int]) -> dict[str, set[bool | int]]:
    """For each key an operator change touched: the values the final state may hold. An acknowledged
    change fixes the value; an unanswered one adds a possibility; a refused or not-made one changes nothing."""
    expected: dict[str, set[bool | int]] = {}
    for o in outcomes:
        key = o.change.key
        current = expected.setdefault(key, {initial.get(key, False if key.startswith("az:") else 0)})
        if o.status == "acknowledged":
            expected[key] = {_value(o.change)}
        elif o.status == "unanswered":
            current.add(_value(o.change))
    return expected


def fleet_values(fleet: dict[str, Any]) -> dict[str, bool | int]:
    values: dict[str, bool | int] = {f"az:{az}": True for az in fleet.get("drained_azs", [])}
    for az in fleet.get("azs", []):
        values.setdefault(f"az:{az}", False)
    for lb in fleet.get("load_balancers", []):
        values[f"lb:{lb['id']}"] = int(lb["capacity"])
    return values


def plan_values(plan: dict[str, Any], fleet: dict[str, Any]) -> dict[str, bool | int | None]:
    """What the plan shows for every key: an AZ is drained when every one of its targets has weight 0
    (None: mixed, some serving, some not, which no drain state explains); an LB's capacity."""
    active = {lb["id"] for lb in fleet.get("load_balancers", []) if lb.get("state", "active") == "active" and int(lb["capacity"]) > 0}
    by_az: dict[str, list[bool]] = {}
    values: dict[str, bool | int | None] = {}
    for ep in plan.get("endpoints", []):
        for t in ep.get("targets", []):
            values[f"lb:{t['lb_id']}"] = int(t.get("capacity", 0))
            if t["lb_id"] in active:
                by_az.setdefault(t["az"], []).append(int(t["weight"]) == 0)
    for az, zero in by_az.items():
        values[f"az:{az}"] = True if all(zero) else (False if not any(zero) else None)
    return values


def lost_changes(
    outcomes: list[ChangeOutcome], initial_fleet: dict[str, Any], final_fleet: dict[str, Any], final_plan: dict[str, Any]
) -> list[str]:
    """Every acknowledged change missing from the final fleet or the final plan, in words."""
    expected = expected_values(outcomes, fleet_values(initial_fleet))
    in_fleet = fleet_values(final_fleet)
    in_plan = plan_values(final_plan, final_fleet)
    lost = []
    for key, allowed in sorted(expected.items()):
        last = next((o for o in reversed(outcomes) if o.change.key == key and o.status == "acknowledged"), None)
        said = f"{last.change.describe()} (acknowledged at {last.t:.1f}s)" if last else f"{key} (no change acknowledged)"
        if in_fleet.get(key) not in allowed:
            lost.append(f"{said}: the final fleet has {key} = {in_fleet.get(key)!r}, expected {sorted(allowed)!r}")
        if in_plan.get(key) not in allowed:
            lost.append(f"{said}: the final plan (version {final_plan.get('version')}) has {key} = {in_plan.get(key)!r}, expected {sorted(allowed)!r}")
    return lost


# -- the verdict ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaultWindow:
    fault: Fault
    started: float  # seconds from the start of the nemesis, as carried out
    healed: float
    injected: bool
    note: str = ""


def attribute(violations: Iterable[Violation], windows: Iterable[FaultWindow]) -> dict[str, int]:
    """Violations per fault kind active (or healed less than ATTRIBUTION_GRACE_S before) when they happened."""
    active = [w for w in windows if w.injected]
    out: dict[str, int] = {}
    for v in violations:
        kinds = {w.fault.kind for w in active if w.started - 0.5 <= v.t <= w.healed + ATTRIBUTION_GRACE_S} or {"(no fault)"}
        for k in kinds:
            out[k] = out.get(k, 0) + 1
    return out


@dataclass
class Verdict:
    passed: bool
    properties: dict[str, tuple[bool, str]]
    by_kind: dict[str, int]  # violations per fault kind


def judge(tally: Tally, violation_count: dict[str, int], violations: list[Violation], windows: list[FaultWindow],
          lost: list[str], convergence: Convergence | None) -> Verdict:
    props = {
        "NoEmptyAnswer": (violation_count.get("NoEmptyAnswer", 0) == 0,
                          f"{tally.empty} empty answers of {tally.dns_answers}; {tally.dangling_reads} dangling root reads"),
        "NoErrorAnswer": (violation_count.get("NoErrorAnswer", 0) == 0,
                          f"{tally.errors} REFUSED/SERVFAIL answers; {tally.timeouts} queries without an answer in {DNS_TIMEOUT_S}s (not judged)"),
        "VersionNeverDecreases": (violation_count.get("VersionNeverDecreases", 0) == 0,
                                  f"{tally.dns_decreases} decreases over DNS ({tally.dns_version_reads} reads), "
                                  f"{tally.route53_decreases} on Route 53 ({tally.route53_reads} reads, {tally.route53_failed_reads} failed)"),
        "NoLostChange": (not lost, f"{len(lost)} lost" + (": " + "; ".join(lost[:5]) if lost else "")),
        "Converged": (bool(convergence and convergence.converged),
                      "not measured" if convergence is None else
                      (f"plan {convergence.version} (or newer) served everywhere {convergence.seconds:.1f}s after the nemesis stopped"
                       if convergence.converged else
                       f"plan {convergence.version} not served everywhere within {convergence.seconds:.0f}s: "
                       f"(Route 53, DNS) per endpoint {convergence.last_seen}")),
    }
    return Verdict(all(ok for ok, _ in props.values()), props, attribute(violations, windows))
