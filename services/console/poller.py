"""The console's one reader of the stack: Route 53 within one call per endpoint per second, and
the planner, enactors, prober and DNS beside it, whatever the number of open pages.

Route 53 is read by services/console/snapshot.py's BudgetedRefresher, which spends one budget
on every kind of call (the zone listing included); every refresh is turned into the view
`dnsctl status` shows (services/prober/overview.py) and published once to the hub. Every
Route 53 request is counted (dnsctl_console_route53_requests_total), so the page can show what
the console costs the account; the emulator counts them too, by caller (the benchmark's figure).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter

from enactor import layout
from services.console.hub import Hub
from services.console.snapshot import BudgetedRefresher
from services.dns.snapshot import Snapshot
from services.logs import get_logger
from services.prober.cell_groups import CellReadings, CellSources, group, read_cells
from services.prober.overview import Readings, Sources, compose, read_sources, route53_views

ROUTE53_REQUESTS = Counter("dnsctl_console_route53_requests_total", "Route 53 control-API requests made by the console")
POLL_INTERVAL_S = 1.0  # at most one view a second, however often Route 53 is read


class StatePoller:
    def __init__(self, sources: Sources, hub: Hub, client_factory: Callable[[], Any], interval_s: float = POLL_INTERVAL_S,
                 cells: CellSources = CellSources()):
        self.sources = sources
        # With cells: each cell's planner and the accounts per cell, read beside the other sources
        # and drawn as groups (services/prober/cell_groups.py); without, the view is as it was.
        self.cells = cells
        self._cell_readings: CellReadings | None = None
        self.hub = hub
        self.interval_s = max(POLL_INTERVAL_S, interval_s)
        self.route53_requests = 0
        self._client_factory = client_factory
        self._refresher = BudgetedRefresher(self._counted_client, only=sources.zones)
        self._refresher.add_listener(self._on_snapshot)
        self._stop = threading.Event()
        self._log = get_logger(component="console-poller")
        self._failing = False
        # Two paths to the page, so that a flip shows as soon as Route 53 is read: the refresher's
        # thread redraws the view when a round finds the zones changed (no I/O: the other sources'
        # last readings), and this poller's thread reads the other sources (planner, enactors, DNS
        # answers, alarms: the slow part) once per interval and redraws the whole view. Neither
        # waits for the other, and the view is published even while Route 53 cannot be read.
        self._readings: Readings | None = None
        self._drawn_from: Snapshot | None = None  # the snapshot of the last view published
        self._publish_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="console-state", daemon=True)

    def _counted_client(self) -> Any:
        client = self._client_factory()
        client.meta.events.register("before-send.route-53", self._count)
        return client

    def _count(self, **_: Any) -> None:
        self.route53_requests += 1
        ROUTE53_REQUESTS.inc()

    def start(self) -> StatePoller:
        self._refresher.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._refresher.stop()

    def _on_snapshot(self, snapshot: Snapshot) -> None:
        drawn = self._drawn_from
        unchanged = drawn is not None and drawn.zones.keys() == snapshot.zones.keys() and all(
            served is drawn.zones[name] for name, served in snapshot.zones.items())  # unchanged zones keep their object
        if self._readings is not None and not unchanged:
            self._publish()

    def _publish(self, readings: Readings | None = None, cell_readings: CellReadings | None = None) -> None:
        with self._publish_lock:  # both threads publish; each view is drawn from the newest snapshot
            if readings is not None:
                self._readings = readings
            if cell_readings is not None:
                self._cell_readings = cell_readings
            if self._readings is None:
                return
            snapshot = self._refresher.current
            try:
                views, route53_error = route53_views(self.sources, None, snapshot if snapshot is not None else Snapshot())
                state = compose(self.sources, views, route53_error, self._readings, time.time())
                if snapshot is None:
                    state["route53_error"] = "no Route 53 snapshot read yet"
                else:
                    for row in state["endpoints"]:
                        row["tree_levels"] = tree_levels(snapshot, row["endpoint"])
                if self.cells:
                    group(state, self._cell_readings, tuple(cell for cell, _ in self.cells.planners))
            except Exception as exc:  # noqa: BLE001 - the page keeps the last good state and says why
                if not self._failing:
                    self._failing = True
                    self._log.warning("console_state_failed", error=f"{type(exc).__name__}: {exc}"[:300])
                return
            if self._failing:
                self._failing = False
                self._log.info("console_state_recovered")
            state["snapshot_at"] = snapshot.loaded_at if snapshot is not None else None
            state["readings_at"] = self._readings.at
            state["console"] = {"route53_requests": self.route53_requests, "route53_budget_per_s": round(self._refresher.rate(), 3),
                                "clients": self.hub.clients, "interval_s": self.interval_s}
            state["published_at"] = time.time()  # with snapshot_at and readings_at: how old each part is
            self._drawn_from = snapshot
            self.hub.publish("state", state)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            current = self._refresher.current
            try:
                views, _ = route53_views(self.sources, None, current if current is not None else Snapshot())
                readings = read_sources(self.sources, views)
                cell_readings = read_cells(self.cells) if self.cells else None
            except Exception as exc:  # noqa: BLE001 - the page keeps the last good state and says why
                if not self._failing:
                    self._failing = True
                    self._log.warning("console_state_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            else:
                self._publish(readings, cell_readings)
            # At most one reading of the other sources per interval, however many pages are open.
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))


def tree_levels(snapshot: Snapshot, endpoint: str) -> dict[str, int]:
    """Levels of every tree in the endpoint's zone: 1 for a top set alone, one more per interior
    level ("i-<uuid>-<path>", path "2-17" is the third level; enactor/layout.py)."""
    served = snapshot.zones.get(endpoint.rstrip(".") + ".")
    if served is None:
        return {}
    view = layout.read_endpoint(served.name, served.zone)
    out = {}
    for tree in view.trees:
        depth = 1
        for record in tree.records:
            if layout.role_of(record.name, served.name)[0] == "interior":
                path = record.name.split(".", 1)[0].split("-", 2)[-1]
                depth = max(depth, 1 + len(path.split("-")))
        out[tree.tree_id] = depth
    return out
