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
from services.prober.overview import Sources, gather

ROUTE53_REQUESTS = Counter("dnsctl_console_route53_requests_total", "Route 53 control-API requests made by the console")
POLL_INTERVAL_S = 1.0  # at most one view a second, however often Route 53 is read


class StatePoller:
    def __init__(self, sources: Sources, hub: Hub, client_factory: Callable[[], Any], interval_s: float = POLL_INTERVAL_S):
        self.sources = sources
        self.hub = hub
        self.interval_s = max(POLL_INTERVAL_S, interval_s)
        self.route53_requests = 0
        self._client_factory = client_factory
        self._refresher = BudgetedRefresher(self._counted_client, only=sources.zones)
        self._refresher.add_listener(self._on_snapshot)
        self._stop = threading.Event()
        self._log = get_logger(component="console-poller")
        self._failing = False
        # The view is built in a thread of its own, from the newest snapshot, so the planner's,
        # enactors' and DNS's answer times never slow the Route 53 reads down (nor the reverse),
        # and the rest of the view is published even while Route 53 cannot be read.
        self._fresh = threading.Event()
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
        self._fresh.set()

    def _publish(self, snapshot: Snapshot | None, route53_error: str | None) -> None:
        try:
            state = gather(self.sources, None, snapshot=snapshot if snapshot is not None else Snapshot())
        except Exception as exc:  # noqa: BLE001 - the page keeps the last good state and says why
            if not self._failing:
                self._failing = True
                self._log.warning("console_state_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return
        if self._failing:
            self._failing = False
            self._log.info("console_state_recovered")
        if route53_error:
            state["route53_error"] = route53_error
        if snapshot is not None:
            for row in state["endpoints"]:
                row["tree_levels"] = tree_levels(snapshot, row["endpoint"])
        state["snapshot_at"] = snapshot.loaded_at if snapshot is not None else None
        state["console"] = {"route53_requests": self.route53_requests, "route53_budget_per_s": round(self._refresher.rate(), 3),
                            "clients": self.hub.clients, "interval_s": self.interval_s}
        self.hub.publish("state", state)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self._fresh.wait(3 * self.interval_s)  # a new snapshot, or the rest of the view anyway
            self._fresh.clear()
            current = self._refresher.current
            self._publish(current, None if current is not None else "no Route 53 snapshot read yet")
            # At most one view per interval: every page gets the same one, however many there are.
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
