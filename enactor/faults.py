"""Fault injection points of the enactor runner, all in one place.

The race lab needs to make an enactor unlucky on purpose: lose the next N lock attempts, wait
before a flip, pause, see Route 53 slow or failing, back off longer. Every such fault is a field
here, consulted by the runner at the one point where it can happen (never inside the protocol
core, which stays the same code the model checker runs). All faults are off by default; the
chaos routes (enabled with `--allow-chaos`) set them. An injected fault is logged as
`fault_injected` so a timeline never mistakes it for the real thing.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

from enactor import layout
from enactor import protocol as p


@dataclass
class FaultSettings:
    lose_lock_attempts: int = 0  # the next N lock acquisitions fail as if another enactor held the lock
    delay_before_flip_s: float = 0.0  # sleep between deciding to flip and submitting the flip
    route53_latency_s: float = 0.0  # added before every Route 53 call
    route53_error_rate: float = 0.0  # probability that a Route 53 call fails (as a transport error)
    backoff_multiplier: float = 1.0  # scales every backoff (not the poll interval)
    paused: bool = False  # the runner performs no request while paused


class Faults:
    """Thread-safe holder of the current faults, and the checks the runner makes at each point."""

    def __init__(self, rng: random.Random | None = None):
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._resumed = threading.Event()
        self._resumed.set()
        self._rng = rng or random.Random()

    def update(self, **fields: Any) -> FaultSettings:
        with self._lock:
            for key, value in fields.items():
                if not hasattr(self._settings, key):
                    raise ValueError(f"no fault named {key!r}")
                setattr(self._settings, key, value)
            if self._settings.paused:
                self._resumed.clear()
            else:
                self._resumed.set()
            return FaultSettings(**vars(self._settings))

    def current(self) -> FaultSettings:
        with self._lock:
            return FaultSettings(**vars(self._settings))

    def wait_while_paused(self, stop: threading.Event) -> None:
        while not self._resumed.is_set() and not stop.is_set():
            self._resumed.wait(0.1)

    def lost_lock_attempt(self, state: p.EndpointState, request: p.Request, now: float) -> p.BatchRejected | None:
        """A rejection worded as Route 53 words a lost lock, for the first batch of a unit."""
        if not isinstance(request, p.SubmitBatch) or state.acquired:
            return None
        with self._lock:
            if self._settings.lose_lock_attempts <= 0:
                return None
            self._settings.lose_lock_attempts -= 1
        first = request.changes[0]
        problem = "the values provided do not match the current values" if first.action == "DELETE" else "it already exists"
        verb = "delete" if first.action == "DELETE" else "create"
        lock = layout.lock_name(state.endpoint)
        message = f"Tried to {verb} resource record set [name='{lock}', type='TXT'] but {problem} (injected fault)"
        return p.BatchRejected((message,), "InvalidChangeBatch", now)

    def flip_delay(self, request: p.Request) -> float:
        return self.current().delay_before_flip_s if p.is_flip(request) else 0.0

    def route53_fault(self) -> tuple[float, bool]:
        """(latency to add, whether this call fails) for one Route 53 call."""
        with self._lock:
            s = self._settings
            fail = s.route53_error_rate > 0 and self._rng.random() < s.route53_error_rate
            return s.route53_latency_s, fail

    def backoff_scale(self, sleep: p.Sleep) -> float:
        return 1.0 if sleep.reason == "poll" else self.current().backoff_multiplier
