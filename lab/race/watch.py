"""The race's own witness: reads Route 53 and asks DNS about every endpoint all along the race.

It is independent of the prober (which the verdict also consults): every ~150 ms it lists each
endpoint's zone through the control API and asks the data plane for each record type the
endpoint serves, and remembers what matters for the verdict: when a root first dangled, every
answer with zero addresses, and every time the version behind a root went down.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from lab.race.control import Control, Endpoint
from services.logs import get_logger


@dataclass
class EndpointWitness:
    answers: int = 0
    empty: int = 0
    first_empty: float | None = None
    first_dangling: float | None = None
    dangling_now: bool = False
    versions: list[tuple[float, int | None]] = field(default_factory=list)  # (time, version) at each change
    went_down: list[tuple[float, int, int]] = field(default_factory=list)  # (time, from, to)


class Watch:
    def __init__(self, control: Control, t0: float, interval_s: float = 0.15):
        self.control = control
        self.t0 = t0
        self.interval_s = interval_s
        self.endpoints: list[Endpoint] = control.endpoints()
        self.seen: dict[str, EndpointWitness] = {ep.name: EndpointWitness() for ep in self.endpoints}
        self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="race-watch", daemon=True)
        self.log = get_logger(component="race")

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def snapshot(self) -> dict[str, EndpointWitness]:
        with self._lock:
            return {k: EndpointWitness(**vars(v)) for k, v in self.seen.items()}

    def empty_answers(self) -> int:
        with self._lock:
            return sum(w.empty for w in self.seen.values())

    def dangling(self) -> list[str]:
        with self._lock:
            return [name for name, w in self.seen.items() if w.dangling_now]

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            for ep in self.endpoints:
                try:
                    self._look(ep)
                except Exception as exc:  # noqa: BLE001 - a failed look is counted, never fatal
                    self.errors += 1
                    if self.errors == 1:
                        self.log.warning("race_watch_failed", endpoint=ep.name, error=f"{type(exc).__name__}: {exc}"[:300])
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def _look(self, ep: Endpoint) -> None:
        view = self.control.view(ep)
        answers = [self.control.ask(ep.name, rtype) for rtype in ep.record_types]
        now = time.monotonic() - self.t0
        with self._lock:
            w = self.seen[ep.name]
            w.dangling_now = bool(view.roots) and view.dangling
            if w.dangling_now and w.first_dangling is None:
                w.first_dangling = now
            version = view.active_version
            last = w.versions[-1][1] if w.versions else None
            if not w.versions or version != last:
                w.versions.append((now, version))
                if version is not None and last is not None and version < last:
                    w.went_down.append((now, last, version))
            for a in answers:
                if a.rcode is None:
                    continue
                w.answers += 1
                if a.empty and view.roots:
                    w.empty += 1
                    if w.first_empty is None:
                        w.first_empty = now
