"""Synthetic logs in exactly the format services/logs.py writes, on a virtual clock.

Each process gets its own file, pid and `seq` counter; a line is the event's own fields, then
event, level, ts (isoformat UTC with "Z"), process, pid, seq: the key order of logs.py's
processor chain (test_events checks this against a real logs.py subprocess). The scenarios
replay the October race (legacy) and the same script with the guard on.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ENDPOINT = "dynamodb.us-east-1.api.aws"
START = datetime(2025, 10, 20, 6, 48, 0, tzinfo=UTC)


@dataclass
class LogWriter:
    start: datetime = START
    lines: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    seqs: dict[str, itertools.count] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)

    def at(self, t: float, process: str, event: str, level: str = "info", **fields: Any) -> dict[str, Any]:
        """Log `event` from `process` at `t` seconds after the start."""
        if process not in self.seqs:
            self.seqs[process] = itertools.count(1)
            self.pids[process] = 4000 + len(self.pids)
        if process.startswith("enactor"):
            fields = {"enactor": process, **fields}  # the runner binds its id first
        ts = (self.start + timedelta(seconds=t)).isoformat().replace("+00:00", "Z")
        record = {**fields, "event": event, "level": level, "ts": ts, "process": process, "pid": self.pids[process], "seq": next(self.seqs[process])}
        self.lines.setdefault(process, []).append((t, json.dumps(record)))
        return record

    def plain(self, t: float, process: str, text: str) -> None:
        """A non-JSON line (traceback, uvicorn) in `process`'s log."""
        self.lines.setdefault(process, []).append((t, text))

    def write(self, directory: Path) -> list[Path]:
        paths = []
        for process, lines in self.lines.items():
            path = directory / f"{process}.log"
            path.write_text("".join(text + "\n" for _, text in sorted(lines, key=lambda x: x[0])))
            paths.append(path)
        return paths


def _apply(w: LogWriter, t: float, who: str, v: int, *, cleanup: bool = True, dt: float = 0.004) -> float:
    """One enactor's whole cycle for plan v, as enactor/protocol.py notes it; returns the end time."""
    ep = ENDPOINT
    steps = [
        ("plan_seen", {"applied_version": v - 1, "done_version": v - 1}),
        ("lock_attempt", {"applied_version": v - 1, "holder": who, "verdict": "ours", "batches": 2}),
        ("lock_acquired", {"applied_version": v - 1, "batch_id": f"{who}-{v}-1", "holder": who, "counter": v * 3}),
        ("tree_built", {"applied_version": v - 1, "batch_id": f"{who}-{v}-1", "tree_id": f"t-{who[-1]}{v}"}),
        ("flipped", {"applied_version": v, "batch_id": f"{who}-{v}-2", "tree_id": f"t-{who[-1]}{v}", "from_tree": f"t-{who[-1]}{v - 1}", "rollback_to": [f"t-{who[-1]}{v - 1}"], "healed": False}),
        ("lock_released", {"applied_version": v, "batch_id": f"{who}-{v}-2", "holder": who}),
    ]
    if cleanup:
        steps += cleanup_steps(who, v)
    for k, (event, fields) in enumerate(steps):
        w.at(t + k * dt, who, event, endpoint=ep, plan_version=v, **fields)
    return t + len(steps) * dt


def cleanup_steps(who: str, v: int, extra: tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    old = v - 6
    trees = sorted([f"t-{who[-1]}{old}", *extra])
    return [
        ("lock_attempt", {"applied_version": v, "holder": who, "verdict": "ours", "batches": 1}),
        ("lock_acquired", {"applied_version": v, "batch_id": f"{who}-{v}-3", "holder": who, "counter": v * 3 + 1}),
        ("cleanup_deleted", {"applied_version": v, "batch_id": f"{who}-{v}-3", "records": 9, "trees": trees, "tree_versions": [int(t[3:]) for t in trees], "leaves": 0}),
        ("lock_released", {"applied_version": v, "batch_id": f"{who}-{v}-3", "holder": who}),
    ]


def race(writer: LogWriter | None = None, *, guarded: bool = False, contention: int = 20) -> LogWriter:
    """The 20 October sequence: enactor-c loses the lock `contention` times and falls behind while
    plans 111..145 are published and applied by a; then, between a's flip of 145 and a's clean-up,
    c flips its stale plan 110 (legacy) or refuses it (guarded); a's clean-up deletes the trees
    of plans older than 140, c's tree of plan 110 included; the prober sees the result."""
    w = writer or LogWriter()
    ep = ENDPOINT
    w.plain(0.0, "planner", "INFO:     Started server process [4000]")
    w.plain(0.0, "planner", "INFO:     Uvicorn running on 127.0.0.1:8080 (Press CTRL+C to quit)")
    w.at(0.00, "planner", "plan_published", plan_version=110, lane="slow", reason="scheduled", key="plans/000110.json", baseline_version=109, forced=False, targets=6)
    end = _apply(w, 0.05, "enactor-a", 110)
    w.at(0.06, "enactor-b", "plan_seen", endpoint=ep, plan_version=110, applied_version=109, done_version=109)
    w.at(0.07, "enactor-c", "plan_seen", endpoint=ep, plan_version=110, applied_version=109, done_version=109)
    w.at(end + 0.01, "dns", "snapshot_zone_changed", zone=ep + ".", records=30, generation=1)
    w.at(end + 0.02, "prober", "probe", endpoint=ep, record_type="A", answers=3, latency_ms=1.2)
    w.at(0.06 + 0.01, "enactor-b", "up_to_date", endpoint=ep, plan_version=110, applied_version=110)
    # enactor-c keeps losing the lock while a applies plan after plan.
    t = 0.2
    for i in range(contention):
        ti = t + i * 0.2
        if i % 4 == 3:  # now and then the lock looked free and c lost the race for it in the batch
            w.at(ti - 0.01, "enactor-c", "lock_attempt", endpoint=ep, plan_version=110, applied_version=109, holder="enactor-a", verdict="expired", batches=3)
            w.at(ti, "enactor-c", "lock_lost", level="warning", endpoint=ep, plan_version=110, applied_version=109, batch_id=f"c-x{i}", cause="lock", error_code="InvalidChangeBatch", messages=["Tried to delete resource record set [name='_lock.dynamodb.us-east-1.api.aws.', type='TXT'] but the values provided do not match the current values"])
        else:
            w.at(ti, "enactor-c", "lock_lost", level="warning", endpoint=ep, plan_version=110, applied_version=109, holder="enactor-a", expires=1760942900 + i)
        w.at(ti + 0.001, "enactor-c", "backoff", endpoint=ep, plan_version=110, applied_version=109, max_seconds=min(5.0, 0.05 * 2 ** min(i, 10)), attempt=i + 1, reason="lock_lost")
    versions = list(range(111, 146))
    step = contention * 0.2 / len(versions)
    for k, v in enumerate(versions):
        tv = 0.25 + k * step
        w.at(tv, "planner", "plan_published", plan_version=v, lane="slow", reason="scheduled", key=f"plans/{v:06d}.json", baseline_version=v - 1, forced=False, targets=6)
        end = _apply(w, tv + 0.01, "enactor-a", v, cleanup=v != 145)
        w.at(end + 0.002, "prober", "probe", endpoint=ep, record_type="A", answers=3, latency_ms=1.1)
    t = 0.2 + contention * 0.2 + 0.1
    w.at(t, "enactor-c", "lock_attempt", endpoint=ep, plan_version=110, applied_version=109, holder="enactor-a", verdict="free", batches=2)
    w.at(t + 0.01, "enactor-c", "lock_acquired", endpoint=ep, plan_version=110, applied_version=109, holder="enactor-c", batch_id="c-1", counter=500)
    w.at(t + 0.02, "enactor-c", "tree_built", endpoint=ep, plan_version=110, applied_version=109, tree_id="t-c110", batch_id="c-1")
    if guarded:
        w.at(t + 0.03, "enactor-c", "refused_stale", endpoint=ep, plan_version=110, applied_version=145)
        for k, (event, fields) in enumerate(cleanup_steps("enactor-a", 145, extra=("t-c110",))):
            w.at(t + 0.05 + k * 0.004, "enactor-a", event, endpoint=ep, plan_version=145, **fields)
        for i in range(6):
            w.at(t + 0.3 + i * 0.2, "prober", "probe", endpoint=ep, record_type="A", answers=3, latency_ms=1.0)
        return w
    w.at(t + 0.03, "enactor-c", "flipped", endpoint=ep, plan_version=110, applied_version=110, batch_id="c-2", tree_id="t-c110", from_tree="t-a145", rollback_to=["t-a145"], healed=False)
    for k, (event, fields) in enumerate(cleanup_steps("enactor-a", 145, extra=("t-c110", "t-a110", "t-a111"))):
        w.at(t + 0.05 + k * 0.004, "enactor-a", event, endpoint=ep, plan_version=145, **fields)
    w.at(t + 0.08, "dns", "snapshot_zone_changed", zone=ep + ".", records=8, generation=2)
    for i in range(8):
        w.at(t + 0.1 + i * 0.2, "prober", "probe", endpoint=ep, record_type="A", answers=0, latency_ms=1.0)
    dangling = {"rank": 1, "endpoints": [ep], "since": 1760942904.6, "detail": f"root A -> t-c110.{ep}. does not exist", "caused_by": None}
    w.at(t + 0.3, "prober", "alarm_fired", level="error", alarm="RootAliasDangling", endpoint=ep, **dangling)
    w.at(t + 0.31, "prober", "alarm_fired", level="error", alarm="EndpointEmpty", endpoint=ep, rank=4, endpoints=[ep], detail="2 empty probes", caused_by="RootAliasDangling")
    w.at(t + 0.5, "planner", "plan_published", plan_version=146, lane="slow", reason="scheduled", key="plans/000146.json", baseline_version=145, forced=False, targets=6)
    rejected = ["RRSet of type A with DNS name rollback.dynamodb.us-east-1.api.aws. is not permitted because the alias target t-c110.dynamodb.us-east-1.api.aws. does not exist"]
    for who, off in (("enactor-a", 0.0), ("enactor-b", 0.1)):
        w.at(t + 0.55 + off, who, "plan_seen", endpoint=ep, plan_version=146, applied_version=145, done_version=145)
        w.at(t + 0.56 + off, who, "tree_built", endpoint=ep, plan_version=146, applied_version=145, tree_id=f"t-{who[-1]}146", batch_id=f"{who}-146-1")
        for i in range(12):
            ti = t + 0.6 + off + i * 0.25
            w.at(ti, who, "lock_attempt", endpoint=ep, plan_version=146, applied_version=145, holder=who, verdict="ours", batches=1)
            w.at(ti + 0.01, who, "flip_failed", level="error", endpoint=ep, plan_version=146, applied_version=145, stuck=i >= 2, batch_id=f"{who}-ff{i}", cause="other", error_code="InvalidChangeBatch", messages=rejected)
            w.at(ti + 0.011, who, "backoff", endpoint=ep, plan_version=146, applied_version=145, max_seconds=0.2, attempt=i + 1, reason="flip_failed")
    w.plain(t + 0.6, "enactor-a", "Traceback (most recent call last):")
    w.plain(t + 0.6, "enactor-a", '  File "enactor/runner.py", line 1, in <module>')
    w.plain(t + 0.6, "enactor-a", "InvalidChangeBatch: alias target does not exist")
    w.at(t + 3.5, "prober", "alarm_fired", level="error", alarm="EnactorStuck", enactor="enactor-a", rank=2, endpoints=[ep], detail="3 flips failed in a row", caused_by="RootAliasDangling")
    return w
