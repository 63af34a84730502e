"""The timeline as every renderer sees it: merged events, their marks, rows, links and lanes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.timeline.anomalies import Analysis, analyse
from lab.timeline.collapse import MIN_REPEATS, EventRow, Row, collapse
from lab.timeline.events import Event, Merged, read_logs
from lab.timeline.links import ENACTOR_EVENTS, PUBLISHED, Link, find_links


@dataclass(frozen=True, slots=True)
class Timeline:
    merged: Merged
    analysis: Analysis
    rows: tuple[Row, ...]
    links: tuple[Link, ...]
    lanes: tuple[str, ...]

    @property
    def events(self) -> tuple[Event, ...]:
        return self.merged.events

    def row_of(self) -> dict[int, int]:
        """Event index -> the row that shows it (a folded run shows all its members)."""
        return {e.index: r for r, row in enumerate(self.rows) for e in row.events}


def lane_order(events: Sequence[Event]) -> tuple[str, ...]:
    """Publishers (the planner) left, enactors next, observers (DNS, prober) after, the rest last."""
    publishers = {e.lane for e in events if e.name == PUBLISHED}
    enactors = {e.lane for e in events if e.name in ENACTOR_EVENTS} - publishers
    rest = {e.lane for e in events} - publishers - enactors

    def rank(lane: str) -> tuple[int, str]:
        if lane in publishers:
            return (0, lane)
        if lane in enactors:
            return (1, lane)
        return (3 if lane.startswith("emulator") else 2, lane)

    return tuple(sorted(publishers | enactors | rest, key=rank))


def build(merged: Merged, *, fold: bool = True, min_repeats: int = MIN_REPEATS) -> Timeline:
    analysis = analyse(merged.events)
    if fold:
        rows = collapse(merged.events, analysis.marks, min_repeats=min_repeats)
    else:
        rows = [EventRow(e, analysis.marks.get(e.index)) for e in merged.events]
    links = find_links(merged.events, analysis)
    return Timeline(merged, analysis, tuple(rows), tuple(links), lane_order(merged.events))


def build_from_files(paths: Sequence[Path], *, fold: bool = True) -> Timeline:
    return build(read_logs(paths), fold=fold)
