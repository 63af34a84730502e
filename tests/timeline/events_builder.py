"""Synthetic event lists for the pure rules: events on a virtual clock, merged as the CLI merges them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from lab.timeline.events import Event, LogFile, merge
from tests.timeline.race_logs import START

EP = "dynamodb.us-east-1.api.aws"
EP6 = "dynamodb.us-east-1.api.aws.dualstack"


class Events:
    """Collect (t, process, event, fields) and merge them into the timeline's order."""

    def __init__(self) -> None:
        self._items: list[Event] = []
        self._seq: dict[str, int] = {}

    def add(self, t: float, process: str, name: str, level: str = "info", **fields: Any) -> Events:
        self._seq[process] = self._seq.get(process, 0) + 1
        if process.startswith("enactor"):
            fields.setdefault("enactor", process)
        self._items.append(
            Event(
                ts=START + timedelta(seconds=t),
                process=process,
                seq=self._seq[process],
                name=name,
                level=level,
                pid=1000,
                fields=fields,
                source=f"{process}.log",
                line=self._seq[process],
            )
        )
        return self

    def merged(self) -> tuple[Event, ...]:
        return merge([LogFile("synthetic", tuple(self._items), 0)]).events
