"""Fold repetitive noise into one row: "×40 lock contention between t1 and t2".

Each lane's events about one endpoint form a stream (other lanes and endpoints may interleave
in the timeline; they do not break it). Each event of a stream becomes a token that says what
it tells the reader, leaving out what changes on every repetition:

- lock_attempt / lock_lost / backoff are all "lock contention", and every flip_failed is a
  "flip failure", whatever their versions, holders and delays;
- any other event is its name, level and the few fields that make two events the same story
  (SALIENT_FIELDS: the alarm, the number of answers, the error's cause, ...). Versions, tree ids,
  batch ids, timings and messages are not part of it: they are summed up on the folded row;
- the event's mark: effects of one cause fold together; an anomaly never folds.

An anomaly (of any lane) starts a new chapter and no run spans two chapters, so a folded row
never hides that something went on after the cause.

A run is a block of 1..MAX_PERIOD tokens repeated at least MIN_REPEATS times in a row: 40 lock
contention events (period 1), or an enactor's plan_seen -> ... -> flipped -> cleanup_deleted
cycle applied to 35 plans of a burst, or a stuck enactor's lock_attempt -> flip_failed ->
backoff loop. Then what is left of routine work (ROUTINE: plan_seen, flipped, up_to_date, ...,
at info level and unmarked) is merged with the runs beside it into one row per stretch of at
least ROUTINE_MIN events: three enactors competing for the same plans do not repeat in a neat
cycle, but nothing in that stretch needs reading one event at a time. Lock contention (warning
level) and everything unknown stay visible. A folded row takes the place of its first event.

Streams are per lane and per subject: the endpoint, or the zone a DNS server or the emulator
talks about.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lab.timeline.anomalies import Mark
from lab.timeline.events import Event

FAMILIES: dict[str, str] = {
    "lock_attempt": "lock contention",
    "lock_lost": "lock contention",
    "backoff": "lock contention",
    "flip_failed": "flip failures",
}
# The fields that make two events of the same name the same story.
SALIENT_FIELDS = (
    "alarm", "answers", "answer_count", "addresses", "address_count", "rcode", "record_type", "type", "zone",
    "cause", "error_code", "reason", "stuck", "healed", "lane", "state", "status", "verdict", "request", "forced",
)  # fmt: skip
# Work an enactor, the DNS server or the emulator does all day; a longer stretch of it, with no
# mark and no warning, is one row ("×24 routine events (flipped ×3, ...) plans 3..9").
ROUTINE = frozenset(
    {
        "plan_seen", "up_to_date", "lock_attempt", "lock_acquired", "lock_released", "tree_built",
        "propagation_wait_started", "propagation_insync", "flipped", "cleanup_deleted", "cleanup_skipped",
        "snapshot_loaded", "snapshot_zone_changed", "route53_change_applied", "plan_published",
    }
)  # fmt: skip
ROUTINE_MIN = 6
MAX_PERIOD = 20  # an enactor's whole apply cycle (plan_seen .. lock_released) fits
MIN_REPEATS = 3  # two repetitions read fine; from three on, a run is noise


@dataclass(frozen=True, slots=True)
class EventRow:
    event: Event
    mark: Mark | None = None

    @property
    def lane(self) -> str:
        return self.event.lane

    @property
    def first(self) -> Event:
        return self.event

    @property
    def last(self) -> Event:
        return self.event

    @property
    def events(self) -> tuple[Event, ...]:
        return (self.event,)


@dataclass(frozen=True, slots=True)
class CollapsedRow:
    events: tuple[Event, ...]
    period: int  # events per repetition: 1 for "×40 lock contention", more for a repeated cycle
    mark: Mark | None = None
    routine: bool = False  # a stretch of routine work rather than one thing repeated

    @property
    def lane(self) -> str:
        return self.events[0].lane

    @property
    def first(self) -> Event:
        return self.events[0]

    @property
    def last(self) -> Event:
        return self.events[-1]

    @property
    def count(self) -> int:
        """Repetitions: events for period 1 and routine stretches, cycles otherwise."""
        return len(self.events) // self.period

    @property
    def endpoint(self) -> str | None:
        return self.events[0].endpoint

    @property
    def name(self) -> str:
        """'lock contention', 'probe', 'cycles' for a repeated block of events, or 'routine'."""
        if self.routine:
            return "routine events"
        if self.period > 1:
            return "cycles"
        return FAMILIES.get(self.first.name, self.first.name)

    @property
    def salient(self) -> str:
        """What every repetition says ('answers=3 record_type=A'); empty for families and cycles."""
        if self.routine or self.period > 1 or self.first.name in FAMILIES:
            return ""
        return " ".join(f"{k}={_text(self.first.fields[k])}" for k in SALIENT_FIELDS if k in self.first.fields)

    @property
    def label(self) -> str:
        return f"{self.name} {self.salient}".strip()

    @property
    def cycle(self) -> str:
        """The events of one repetition, each name once: 'lock_attempt → flip_failed → backoff'."""
        return " → ".join(dict.fromkeys(e.name for e in self.events[: self.period]))

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(e.name for e in self.events))

    def tally(self) -> str:
        """'flipped ×3, up_to_date ×4, ...', most frequent first."""
        return ", ".join(f"{name} ×{n}" for name, n in Counter(e.name for e in self.events).most_common())

    @property
    def versions(self) -> list[int]:
        return sorted({v for e in self.events if (v := e.int_field("plan_version")) is not None})

    def describe(self) -> str:
        """'×40 lock contention (lock_lost ×20, backoff ×20) plan 110 between t1 and t2'."""
        kinds = ""
        if self.routine:
            kinds = " (" + self.tally() + ")"
        elif self.period > 1:
            kinds = f" of {self.cycle}"
        elif len(self.counts) > 1:
            kinds = " (" + ", ".join(f"{name} ×{n}" for name, n in self.counts.items()) + ")"
        versions = self.versions
        plans = ""
        if len(versions) == 1:
            plans = f" plan {versions[0]}"
        elif versions:
            plans = f" plans {versions[0]}..{versions[-1]}"
        return f"×{self.count} {self.label}{kinds}{plans} between {_clock(self.first)} and {_clock(self.last)}"


def _clock(event: Event) -> str:
    return event.ts.strftime("%H:%M:%S.%f")[:-3]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)


Row = EventRow | CollapsedRow


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def signature(event: Event, mark: Mark | None) -> tuple | None:
    """What must be equal for two events to fold together; None: this event never folds."""
    if mark is not None and mark.role in ("cause", "anomaly"):
        return None
    marked = (mark.role, mark.anomaly) if mark else None
    family = FAMILIES.get(event.name)
    if family is not None:
        return (family, marked)
    salient = tuple((k, _frozen(event.fields[k])) for k in SALIENT_FIELDS if k in event.fields)
    return (event.name, event.level, salient, marked)


def _repeats(tokens: Sequence[tuple | None], i: int, period: int) -> tuple[int, int]:
    """How often the block of `period` tokens at i repeats, and the length covered (with the
    beginning of one more repetition, as a loop interrupted mid-way leaves it)."""
    block = tokens[i : i + period]
    if len(block) < period or any(t is None for t in block):
        return 0, 0
    k = 1
    while tokens[i + k * period : i + (k + 1) * period] == block:
        k += 1
    tail = 0
    while tail < period - 1 and i + k * period + tail < len(tokens) and tokens[i + k * period + tail] == block[tail]:
        tail += 1
    return k, k * period + tail


def _runs(tokens: Sequence[tuple | None], min_repeats: int) -> list[tuple[int, int, int]]:
    """(start, length, period) of every folded run in one stream, greedy from the left."""
    runs, i = [], 0
    while i < len(tokens):
        best_len, best_period = 0, 0
        for period in range(1, MAX_PERIOD + 1):
            k, length = _repeats(tokens, i, period)
            if k >= min_repeats and length > best_len:
                best_len, best_period = length, period
        if best_len:
            runs.append((i, best_len, best_period))
            i += best_len
        else:
            i += 1
    return runs


def _is_routine(event: Event, mark: Mark | None) -> bool:
    return mark is None and event.name in ROUTINE and event.level in ("debug", "info")


def _segments(stream: Sequence[Event], marks: dict[int, Mark], min_repeats: int) -> list[tuple[int, int, int]]:
    """The stream cut into (start, length, period): folded runs, single events (period 0), and
    stretches of routine work (period -1) merged from the two."""
    tokens = [signature(e, marks.get(e.index)) for e in stream]
    pieces, i = [], 0
    for start, length, period in _runs(tokens, min_repeats):
        pieces += [(j, 1, 0) for j in range(i, start)]
        pieces.append((start, length, period))
        i = start + length
    pieces += [(j, 1, 0) for j in range(i, len(stream))]

    out: list[tuple[int, int, int]] = []
    group: list[tuple[int, int, int]] = []

    def flush() -> None:
        size = sum(length for _, length, _ in group)
        if len(group) > 1 and size >= ROUTINE_MIN:
            out.append((group[0][0], size, -1))
        else:
            out.extend(group)
        group.clear()

    for piece in pieces:
        start, length, _ = piece
        if all(_is_routine(e, marks.get(e.index)) for e in stream[start : start + length]):
            group.append(piece)
        else:
            flush()
            out.append(piece)
    flush()
    return out


def collapse(events: Sequence[Event], marks: dict[int, Mark], min_repeats: int = MIN_REPEATS) -> list[Row]:
    """The timeline's rows: events, with every run of `min_repeats` or more repetitions folded,
    and every longer stretch of routine work of one lane on one endpoint summed up in one row."""
    # An anomaly is a chapter break: no run folds what happened before it with what came after.
    streams: dict[tuple[str, str | None, int], list[Event]] = defaultdict(list)
    chapter = 0
    for event in events:
        mark = marks.get(event.index)
        if mark is not None and mark.role in ("cause", "anomaly"):
            chapter += 1
        streams[(event.lane, event.subject, chapter)].append(event)
    folded: dict[int, Row] = {}  # first event's index -> its row
    hidden: set[int] = set()
    for stream in streams.values():
        for start, length, period in _segments(stream, marks, min_repeats):
            if period == 0:
                continue
            members = tuple(stream[start : start + length])
            # Every repetition carries the same marks; the row shows the first one of a cycle.
            mark = next((m for e in members[: max(period, 1)] if (m := marks.get(e.index)) is not None), None)
            folded[members[0].index] = CollapsedRow(members, max(period, 1), mark, routine=period < 0)
            hidden.update(e.index for e in members[1:])
    return [folded.get(e.index) or EventRow(e, marks.get(e.index)) for e in events if e.index not in hidden]
