"""Fixed schedules through the model for the replay tests: runs the World allows, built without search.

`walk` publishes every plan in turn and steps each enactor one plain step at a time; a test that
wants a fault in the run passes `prefer`, which may pick a label (a fault) before the schedule does.
"""

from __future__ import annotations

from collections.abc import Callable

from lab.checker.world import PUBLISH, Label, State, World


def walk(world: World, steps: int, prefer: Callable[[State, list[Label]], Label | None] = lambda state, enabled: None) -> list[Label]:
    """Up to `steps` labels from the initial state: `prefer`'s pick when it makes one, else the plan
    every 12 steps (or when no enactor has a plain step), else the plain steps in turn; stops when
    there is nothing left but faults."""
    state, labels = world.initial, []
    for n in range(steps):
        enabled = world.labels(state)
        plain = [lb for lb in enabled if lb[2:] == ("",)]
        label = prefer(state, enabled)
        if label is None and PUBLISH in enabled and (n % 12 == 0 or not plain):
            label = PUBLISH
        elif label is None and plain:
            label = plain[n % len(plain)]
        elif label is None:
            break
        labels.append(label)
        state, _, _ = world.apply(state, label)
    return labels
