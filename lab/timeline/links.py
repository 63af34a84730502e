"""Causal ties between events of different processes: the arrows of the sequence diagram.

- plan: the planner's `plan_published` v -> the first `plan_seen` v in each enactor's lane;
- observe: an enactor's `flipped` of an endpoint -> the first later change about that endpoint
  in each observer lane (prober, DNS server: lanes that neither publish nor enact), i.e. where
  the flip became visible. A change is an observer event that says something other than that
  lane's previous event about the endpoint (collapse.signature), so a prober repeating
  "3 answers" after every flip is not taken for the flip's effect;
- anomaly: an endpoint's cause -> each anomaly that follows from it;
- effect: a cause -> its first effect in each lane.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from lab.timeline.anomalies import FLIPPED, Analysis
from lab.timeline.collapse import signature
from lab.timeline.events import Event

PUBLISHED = "plan_published"
PLAN_SEEN = "plan_seen"
# Events only an enactor logs; a lane with any of them is an enactor's lane.
ENACTOR_EVENTS = frozenset(
    {"plan_seen", "lock_attempt", "lock_acquired", "lock_lost", "backoff", "tree_built", "flipped", "cleanup_deleted", "refused_stale", "flip_failed", "plan_rejected"}
)

Kind = Literal["plan", "observe", "anomaly", "effect"]


@dataclass(frozen=True, slots=True)
class Link:
    src: int  # event indices in the merged timeline
    dst: int
    kind: Kind


def observer_lanes(events: Sequence[Event]) -> set[str]:
    lanes = {e.lane for e in events}
    actors = {e.lane for e in events if e.name in ENACTOR_EVENTS or e.name == PUBLISHED}
    return lanes - actors


def find_links(events: Sequence[Event], analysis: Analysis) -> list[Link]:
    links: list[Link] = []
    observers = observer_lanes(events)
    published: dict[int, int] = {}
    seen: set[tuple[int, str]] = set()
    pending_flip: dict[str, tuple[int, set[str]]] = {}
    last_said: dict[tuple[str, str], tuple | None] = {}
    for e in events:
        version = e.int_field("plan_version")
        if e.name == PUBLISHED and version is not None:
            published.setdefault(version, e.index)
        elif e.name == PLAN_SEEN and version is not None and version in published and (version, e.lane) not in seen:
            seen.add((version, e.lane))
            links.append(Link(published[version], e.index, "plan"))
        if e.name == FLIPPED and e.endpoint is not None:
            pending_flip[e.endpoint] = (e.index, set())
        elif e.lane in observers and (name := e.subject) is not None:
            said = signature(e, None)
            changed = last_said.get((e.lane, name), ()) != said
            last_said[(e.lane, name)] = said
            if changed and name in pending_flip:
                flip, reached = pending_flip[name]
                if e.lane not in reached:
                    reached.add(e.lane)
                    links.append(Link(flip, e.index, "observe"))

    for anomaly in analysis.anomalies:
        if anomaly.caused_by is not None:
            links.append(Link(analysis.by_id(anomaly.caused_by).event_index, anomaly.event_index, "anomaly"))
    for cause in analysis.causes:
        lanes_done: set[str] = set()
        for index in analysis.effects_of(cause.id):
            lane = events[index].lane
            if lane not in lanes_done:
                lanes_done.add(lane)
                links.append(Link(cause.event_index, index, "effect"))
    return sorted(links, key=lambda link: (link.src, link.dst, link.kind))
