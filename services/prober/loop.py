"""The prober: resolves every endpoint over real DNS every 200 ms, reads Route 53, the planner and
the enactors, keeps the alarm book and exports what it sees as Prometheus metrics.

Three things run side by side: a Route 53 snapshot refresher (a thread, services/dns/snapshot.py,
slower than the DNS server's since Route 53 allows five control-API requests per second per
account), a task polling the planner's and enactors' status, and the probe loop, which also
evaluates the rules (rules.py) and logs each alarm transition once (alarms.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import httpx
from prometheus_client import Counter, Gauge, Histogram

from services.aws_clients import route53_client
from services.dns.explain import EndpointView, endpoint_views
from services.dns.snapshot import Snapshot, SnapshotRefresher
from services.logs import get_logger
from services.prober import accounts, alarms
from services.prober.rules import ProbeResult, Rules, RuleSettings, endpoint_key
from services.prober.sources import EnactorStatus, PlannerStatus, fetch_enactor, fetch_planner
from services.stack import DEFAULT_REGION

PROBES = Counter("dnsctl_probes_total", "DNS probes by endpoint, record type and outcome", ["endpoint", "type", "rcode"])
ANSWERS = Gauge("dnsctl_probe_answers", "Addresses in the latest DNS answer", ["endpoint", "type"])
EMPTY_SECONDS = Counter(
    "dnsctl_probe_empty_seconds_total", "Seconds during which the endpoint answered with zero addresses", ["endpoint", "type"]
)
EMPTY_PROBES = Counter(
    "dnsctl_probe_empty_total", "Probes answered with zero addresses (NOERROR or NXDOMAIN)", ["endpoint", "type"]
)
PROBE_SECONDS = Histogram(
    "dnsctl_probe_seconds", "DNS probe round-trip time", buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
)
ALARM_ACTIVE = Gauge("dnsctl_alarm_active", "1 while the alarm is active", ["alarm", "subject"])
ALARM_TRANSITIONS = Counter("dnsctl_alarm_transitions_total", "Alarm transitions", ["alarm", "transition"])
SOURCE_UP = Gauge("dnsctl_prober_source_up", "1 when the source answered at the last poll", ["source"])
APPLIED_VERSION = Gauge("dnsctl_endpoint_applied_version", "Plan version behind the endpoint's root", ["endpoint"])
PLAN_LAG = Gauge("dnsctl_endpoint_plan_lag", "Newest published plan minus the endpoint's applied version", ["endpoint"])


@dataclass(frozen=True)
class ProberSettings:
    host: str = "127.0.0.1"
    port: int = 8090
    dns: tuple[str, int] = ("127.0.0.1", 8053)
    planner_url: str | None = None
    enactor_urls: tuple[str, ...] = ()
    interval_s: float = 0.2
    probe_timeout_s: float = 0.5
    route53_refresh_s: float = 1.0
    route53_list_s: float = 10.0
    source_interval_s: float = 1.0
    zones: tuple[str, ...] = ()
    rules: RuleSettings = field(default_factory=RuleSettings)
    accounts_interval_s: float = 1.0  # every account name (the cell map's), per cell (services/prober/accounts.py)
    region: str = DEFAULT_REGION


class Prober:
    def __init__(self, settings: ProberSettings, refresher: SnapshotRefresher | None = None):
        self.settings = settings
        self.refresher = refresher or SnapshotRefresher(
            route53_client,
            interval_s=settings.route53_refresh_s,
            only=settings.zones,
            list_interval_s=settings.route53_list_s,
            log_root_changes=False,  # the DNS server logs those; the prober logs alarms
            name="prober-route53",
        )
        self.rules = Rules(settings.rules)
        self.book = alarms.AlarmBook()
        self.planner: PlannerStatus | None = None
        self.enactors: list[EnactorStatus] = []
        self.last_probes: list[ProbeResult] = []
        self.last_probe_at: float | None = None
        self.ticks = 0
        self.blind_reason: str | None = None  # why the prober cannot probe (ProberBlind), or None
        self._views: list[EndpointView] = []
        self._views_of: Snapshot | None = None
        self._types: dict[str, tuple[str, ...]] = {}
        self._last_probe_time: dict[tuple[str, str], float] = {}
        self._known_endpoints: set[str] = set()
        self.account_probes: list[accounts.AccountProbe] = []
        self.accounts_at: float | None = None
        self._accounts_per_cell: dict[str, dict[str, int]] = {}
        self._log = get_logger(component="prober")

    # -- running ---------------------------------------------------------------------------------

    async def run(self) -> None:
        # httpx logs every request at INFO; polling four services each second would drown the alarms.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.refresher.start()
        sources = asyncio.create_task(self._poll_sources())
        account_task = asyncio.create_task(self._probe_accounts())
        self._log.info(
            "prober_started",
            dns=f"{self.settings.dns[0]}:{self.settings.dns[1]}",
            planner=self.settings.planner_url,
            enactors=list(self.settings.enactor_urls),
            interval_ms=int(self.settings.interval_s * 1000),
        )
        try:
            while True:
                started = time.monotonic()
                try:
                    await self.tick(time.time())
                except Exception as exc:  # noqa: BLE001 - one bad round never stops the prober
                    self._log.error("probe_round_failed", error=f"{type(exc).__name__}: {exc}"[:300])
                await asyncio.sleep(max(0.0, self.settings.interval_s - (time.monotonic() - started)))
        finally:
            sources.cancel()
            account_task.cancel()
            self.refresher.stop()

    async def _poll_sources(self) -> None:
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                started = time.monotonic()
                tasks = [fetch_enactor(client, u) for u in self.settings.enactor_urls]
                if self.settings.planner_url:
                    tasks.append(fetch_planner(client, self.settings.planner_url))
                results = await asyncio.gather(*tasks)
                if self.settings.planner_url:
                    planner = results.pop()
                    assert isinstance(planner, PlannerStatus)
                    self._note_source("planner", planner.reachable, planner.error, self.planner)
                    self.planner = planner
                old = {s.url: s for s in self.enactors}
                for status in results:
                    assert isinstance(status, EnactorStatus)
                    self._note_source(status.url, status.reachable, status.error, old.get(status.url))
                self.enactors = list(results)  # type: ignore[arg-type]
                await asyncio.sleep(max(0.0, self.settings.source_interval_s - (time.monotonic() - started)))

    async def _probe_accounts(self) -> None:
        """Every account name, every accounts_interval_s; one accounts_dns event per change of a cell's counts."""
        while True:
            started = time.monotonic()
            snap = self.refresher.current
            try:
                names = accounts.account_names(snap, self.settings.region) if snap is not None else []
                if names:
                    probes = await accounts.probe_accounts(self.settings.dns, names, self.settings.region,
                                                           self.settings.probe_timeout_s,
                                                           {p.account: p for p in self.account_probes})
                    counts = accounts.per_cell(probes)
                    for cell, c in counts.items():
                        if self._accounts_per_cell.get(cell) != c:
                            (self._log.warning if c["lost"] else self._log.info)("accounts_dns", cell=cell, **c)
                    accounts.export(counts, self._accounts_per_cell)
                    self.account_probes, self._accounts_per_cell, self.accounts_at = probes, counts, time.time()
            except Exception as exc:  # noqa: BLE001 - one bad round never stops the prober
                self._log.error("account_probe_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            await asyncio.sleep(max(0.0, self.settings.accounts_interval_s - (time.monotonic() - started)))

    def accounts_json(self) -> dict:
        return {
            "at": self.accounts_at,
            "per_cell": self._accounts_per_cell,
            "accounts": [{"account": p.account, "cell": p.cell, "target": p.target, "addresses": p.addresses,
                          "answered": p.answered, "misses": p.misses}
                         for p in self.account_probes],
        }

    def _note_source(self, name: str, up: bool, error: str | None, before) -> None:
        SOURCE_UP.labels(name).set(1 if up else 0)
        was_up = None if before is None else before.reachable
        if not up and was_up is not False:
            self._log.warning("prober_source_unreachable", source=name, error=error)
        elif up and was_up is False:
            self._log.info("prober_source_reachable", source=name)

    # -- one round -------------------------------------------------------------------------------

    def views(self) -> list[EndpointView] | None:
        snap = self.refresher.current
        if snap is None:
            return None
        if snap is not self._views_of:
            self._views = endpoint_views(snap)
            self._views_of = snap
        return self._views

    async def tick(self, now: float) -> list[alarms.Transition]:
        views = self.views()
        if views is not None:
            for v in views:
                if v.record_types:
                    self._types[endpoint_key(v.endpoint)] = v.record_types
            current = {endpoint_key(v.endpoint) for v in views}
            gone = self._known_endpoints - current
            self._known_endpoints = current
        else:
            current, gone = set(self._known_endpoints), set()
        questions = [(ep, t) for ep in sorted(current) for t in self._types.get(ep, ())]
        probes = list(await asyncio.gather(*(self._probe(ep, t, now) for ep, t in questions)))
        self.last_probes, self.last_probe_at = probes, now
        self.ticks += 1

        transitions: list[alarms.Transition] = []
        if views is not None:
            transitions += self.book.observe(alarms.ROOT_ALIAS_DANGLING, self.rules.dangling(views), now)
            transitions += self.book.observe(alarms.STALE_PLAN_APPLIED, self.rules.stale(views), now)
            for v in views:
                if v.active_version is not None:
                    APPLIED_VERSION.labels(endpoint_key(v.endpoint)).set(v.active_version)
        errors, answered = self.rules.answer_errors(probes)
        transitions += self.book.observe(alarms.ENDPOINT_ANSWER_ERROR, {k: c for k, c in errors.items() if k in current},
                                         now, answered | gone)
        snap = self.refresher.current
        blind = self.rules.blind(
            now,
            snapshot_age_s=None if snap is None else max(0.0, now - snap.loaded_at),
            endpoints=len(questions),
            probes=probes,
            dns=f"{self.settings.dns[0]}:{self.settings.dns[1]}",
        )
        self.blind_reason = blind["prober"].detail if blind else None
        transitions += self.book.observe(alarms.PROBER_BLIND, blind, now)
        empty, evaluated = self.rules.empty(probes, self._types)
        transitions += self.book.observe(alarms.ENDPOINT_EMPTY, {k: c for k, c in empty.items() if k in current},
                                         now, evaluated | gone)
        stuck, seen = self.rules.stuck(self.enactors)
        transitions += self.book.observe(alarms.ENACTOR_STUCK, stuck, now, seen)
        blocked, checked = self.rules.blocked(self.enactors)
        transitions += self.book.observe(alarms.ENDPOINT_BLOCKED, blocked, now, checked)
        lag = self.rules.lag(self.planner, views or [], self.enactors, now)
        if lag is not None:
            conditions, evaluated = lag
            transitions += self.book.observe(alarms.PLAN_LAG_HIGH, conditions, now, evaluated | gone)
            for v in views or []:
                applied = self.rules.applied_version(v, v.endpoint, self.enactors)
                if applied is not None and self.planner and self.planner.newest_version is not None:
                    PLAN_LAG.labels(endpoint_key(v.endpoint)).set(self.planner.newest_version - applied)
        behind = self.rules.store_behind(self.planner, views or [], self.enactors)
        if behind is not None:
            transitions += self.book.observe(alarms.PLAN_STORE_BEHIND, behind[0], now, behind[1] | gone)
        self._report(transitions)
        return transitions

    def _report(self, transitions: list[alarms.Transition]) -> None:
        if not transitions:
            return
        causes = {(a.alarm, a.subject): a.caused_by for a in self.book.active()}
        for t in transitions:
            a = t.alarm
            kind = alarms.SUBJECT_KIND.get(a.alarm, "endpoint")
            ALARM_TRANSITIONS.labels(a.alarm, t.kind).inc()
            if t.kind == "fired":
                ALARM_ACTIVE.labels(a.alarm, a.subject).set(1)
                self._log.warning(
                    "alarm_fired", alarm=a.alarm, rank=a.rank, detail=a.condition.detail,
                    caused_by=causes.get((a.alarm, a.subject)), endpoints=list(a.endpoints), **{kind: a.subject},
                )
            else:
                ALARM_ACTIVE.labels(a.alarm, a.subject).set(0)
                self._log.info("alarm_cleared", alarm=a.alarm, rank=a.rank, active_s=round(t.at - a.since, 3),
                               endpoints=list(a.endpoints), **{kind: a.subject})

    async def _probe(self, endpoint: str, rtype: str, now: float) -> ProbeResult:
        host, port = self.settings.dns
        query = dns.message.make_query(endpoint + ".", dns.rdatatype.from_text(rtype))
        started = time.monotonic()
        try:
            reply = await dns.asyncquery.udp(query, host, port=port, timeout=self.settings.probe_timeout_s)
            if reply.flags & dns.flags.TC:
                reply = await dns.asyncquery.tcp(query, host, port=port, timeout=self.settings.probe_timeout_s)
            rcode = dns.rcode.to_text(reply.rcode())
            count = sum(len(r) for r in reply.answer if r.rdtype == query.question[0].rdtype)
        except (dns.exception.DNSException, OSError):
            rcode, count = None, 0
        seconds = time.monotonic() - started
        PROBE_SECONDS.observe(seconds)
        PROBES.labels(endpoint, rtype, rcode or "TIMEOUT").inc()
        key = (endpoint, rtype)
        previous = self._last_probe_time.get(key)
        self._last_probe_time[key] = now
        if rcode is not None:
            ANSWERS.labels(endpoint, rtype).set(count)
            if count == 0 and rcode in ("NOERROR", "NXDOMAIN"):
                EMPTY_PROBES.labels(endpoint, rtype).inc()
                if previous is not None:
                    EMPTY_SECONDS.labels(endpoint, rtype).inc(max(0.0, now - previous))
        return ProbeResult(endpoint, rtype, rcode, count, seconds)

    def acknowledge_restore(self, endpoint: str, by: str) -> None:
        self.rules.acknowledge_restore(endpoint)
        self._log.info("stale_plan_acknowledged", endpoint=endpoint_key(endpoint), by=by)

    # -- what the API shows ----------------------------------------------------------------------

    def alarms_json(self) -> dict:
        active = [a.to_json() for a in self.book.active()]
        return {
            "alarms": active,
            "cause": active[0] if active else None,
            "evaluated_at": self.last_probe_at,
            "route53_loaded": self.refresher.current is not None,
        }

    def probes_json(self) -> dict:
        return {
            "at": self.last_probe_at,
            "dns": f"{self.settings.dns[0]}:{self.settings.dns[1]}",
            "probes": [
                {"endpoint": p.endpoint, "type": p.record_type, "rcode": p.rcode, "addresses": p.addresses,
                 "seconds": round(p.seconds, 6)}
                for p in self.last_probes
            ],
        }
