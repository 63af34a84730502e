"""What a race left behind, gathered once it is over: the logs of this race, what the prober saw
and raised, what `dig` answered, what the race's own witness saw.

The race's part of every service log (from where each log stood when the race started) is
written to <state dir>/race-<time>/<service>.log, so `dnsctl timeline DIR/*.log --html race.html`
draws this race alone. The same slices feed lab/timeline's analysis, which names the
anomaly (a stale plan flipped over a newer one, the active tree deleted, ...) apart from its
effects; those are the key moments the race prints beside its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.race.control import Answer, Control
from lab.race.scenario import OUTAGE_ALARMS, C, RaceRun

# How the guard keeps a stale plan out: refused at a listing (refused_stale), or dropped when the
# newest plan is re-read after a rejection (plan_superseded), before the stale flip is ever tried.
STALE_REFUSALS = ("refused_stale", "plan_superseded")

@dataclass(frozen=True, slots=True)
class KeyMoment:
    t: float  # seconds since the race started
    who: str
    text: str
    kind: str  # "script" (what the race did), "cause", "anomaly", "guard", "alarm"


@dataclass
class Evidence:
    version_guard: bool | None
    dig_after_damage: list[tuple[str, str, Answer]]
    dig_at_end: list[tuple[str, str, Answer]]
    dangling_at_end: list[str]
    dangling_seen: list[str]
    alarms_fired: list[dict[str, Any]]  # the prober's alarm_fired events during the race
    alarms_active: list[dict[str, Any]]
    refused_stale: int  # enactor-c's refusals of its stale plan: refused_stale, or plan_superseded (the guard's re-read after a rejection)
    stale_flips: list[str]  # the timeline's stale_flip anomalies, summed up
    prober_empty_seconds: float  # growth of dnsctl_probe_empty_seconds_total during the race
    prober_empty_probes: float  # growth of dnsctl_probe_empty_total (every empty probe) during the race
    witness_answers: int
    witness_empty: int
    final_version: int | None
    final_versions: dict[str, int | None]  # endpoint -> version its root serves at the end
    flip_failures: int  # flip_failed events of every enactor during the race
    moments: list[KeyMoment] = field(default_factory=list)
    log_dir: Path | None = None
    timed_out: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def fired(self, alarm: str) -> list[dict[str, Any]]:
        return [a for a in self.alarms_fired if a.get("alarm") == alarm]

    def empty_digs(self, which: str = "any") -> list[tuple[str, str, Answer]]:
        answers = {"after": self.dig_after_damage, "end": self.dig_at_end}.get(which, self.dig_after_damage + self.dig_at_end)
        return [(n, t, a) for n, t, a in answers if a.empty]


def _since(run: RaceRun, ts: Any) -> float:
    try:
        when = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round(when.timestamp() - run.t0_wall, 2)


def _write_slices(control: Control, run: RaceRun) -> Path | None:
    """This race's part of each service log, under the stack's state directory."""
    stamp = datetime.fromtimestamp(run.t0_wall, UTC).strftime("%Y%m%dT%H%M%SZ")
    out = control.stack.state_dir / f"race-{stamp}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        for service, path in control.stack.logs.items():
            if not path.exists():
                continue
            with open(path, "rb") as fh:
                fh.seek(run.log_offsets.get(service, 0))
                (out / f"{service}.log").write_bytes(fh.read())
    except OSError:
        return None
    return out


def _timeline_moments(run: RaceRun, log_dir: Path) -> tuple[list[KeyMoment], list[str]]:
    """Causes, anomalies and the guard at work, as lab/timeline marks them (grouped per
    actor and kind: three endpoints broken the same way are one moment)."""
    from lab.timeline.anomalies import actor
    from lab.timeline.build import build_from_files

    timeline = build_from_files(sorted(log_dir.glob("*.log")))
    events = timeline.events
    moments: list[KeyMoment] = []
    stale: list[str] = []
    seen: set[tuple[str, str]] = set()
    for anomaly in timeline.analysis.anomalies:
        event = events[anomaly.event_index]
        if anomaly.kind == "stale_flip":
            stale.append(anomaly.summary)
        key = (actor(event), anomaly.kind)
        if key in seen:
            continue
        seen.add(key)
        role = "cause" if anomaly.is_cause else "anomaly"
        moments.append(KeyMoment(_since(run, event.ts.isoformat()), actor(event), f"{anomaly.title}: {anomaly.summary}", role))
    guards = [(i, m) for i, m in sorted(timeline.analysis.marks.items()) if m.role == "guard"]
    for who in sorted({actor(events[i]) for i, _ in guards}):
        mine = [i for i, _ in guards if actor(events[i]) == who]
        first = events[mine[0]]
        what = timeline.analysis.marks[mine[0]].note
        moments.append(KeyMoment(_since(run, first.ts.isoformat()), who, f"{what} ({len(mine)} time{'s' if len(mine) != 1 else ''} in this race)", "guard"))
    return moments, stale


def gather(control: Control, run: RaceRun) -> Evidence:
    c = control
    started = time.monotonic()
    events = {service: c.events(service, run.log_offsets.get(service, 0)) for service in c.stack.logs}
    fired = [e for e in events.get("prober", []) if e.get("event") == "alarm_fired"]
    witness = run.watch.snapshot() if run.watch else {}
    views = c.views()
    evidence = Evidence(
        version_guard=run.version_guard,
        dig_after_damage=run.dig_after_damage,
        dig_at_end=run.dig_at_end,
        dangling_at_end=run.dangling_at_end,
        dangling_seen=sorted(name for name, w in witness.items() if w.first_dangling is not None),
        alarms_fired=fired,
        alarms_active=c.alarms(),
        refused_stale=sum(1 for e in events.get(C, []) if e.get("event") in STALE_REFUSALS),
        stale_flips=[],
        prober_empty_seconds=round(c.prober_metric("dnsctl_probe_empty_seconds_total") - run.prober_empty_seconds_before, 3),
        prober_empty_probes=c.prober_metric("dnsctl_probe_empty_total") - run.prober_empty_probes_before,
        witness_answers=sum(w.answers for w in witness.values()),
        witness_empty=sum(w.empty for w in witness.values()),
        final_version=run.final_version,
        final_versions={name: v.active_version for name, v in views.items()},
        flip_failures=sum(1 for name in c.enactors for e in events.get(name, []) if e.get("event") == "flip_failed"),
        timed_out=list(run.timed_out),
        duration_s=round(started - run.t0, 1),
    )
    moments = [KeyMoment(m.t, m.who, m.text, "script") for m in run.moments]
    for alarm in (*OUTAGE_ALARMS, "StalePlanApplied"):
        mine = [e for e in fired if e.get("alarm") == alarm]
        if mine:
            subjects = ", ".join(dict.fromkeys(str(e.get("endpoint") or e.get("enactor") or "?") for e in mine))
            moments.append(KeyMoment(_since(run, mine[0].get("ts")), "prober", f"alarm {alarm} fired for {subjects}", "alarm"))
    evidence.log_dir = _write_slices(c, run)
    if evidence.log_dir is not None:
        found, evidence.stale_flips = _timeline_moments(run, evidence.log_dir)
        moments += found
    evidence.moments = sorted(moments, key=lambda m: m.t)
    return evidence
