"""The checker trace viewer's server half: a `dnsctl check --json` counterexample as frames.

The JSON names each step by its transition label; the zone, the machines and the DNS answer
at each step are not in it, so they are recomputed here by re-running the labels through the
checker's World (lab/checker/world.py) with the checker's own descriptions (lab/checker/trace.py:
describe, endpoint_summary, which asks services/dns/answer.py). Pure: nothing is written.

`parse_counterexample` is the one place that knows the file's format.
"""

from __future__ import annotations

from typing import Any

from lab.checker import trace
from lab.checker.world import Bounds, BoundsError, Label, World

MAX_STEPS = 2000
CELLS_FORMAT = "dnsctl-check-cells/1"  # lab/checker/cells.py's FORMAT (imported only when one arrives)


class TraceInvalid(ValueError):
    """Not a counterexample written by `dnsctl check --json`; the message says what is wrong."""


def parse_counterexample(doc: Any) -> tuple[Bounds, list[Label], list[Label]]:
    """(bounds, the steps' labels, the continuation's labels) of a `dnsctl check --json` document."""
    if not isinstance(doc, dict) or doc.get("format") != trace.FORMAT:
        raise TraceInvalid(f"not a counterexample written by `dnsctl check --json` (format {trace.FORMAT})")
    try:
        bounds = Bounds(**doc["bounds"])
        labels = [tuple(s["label"]) for s in doc["steps"]]
        continuation = [tuple(s["label"]) for s in doc.get("continuation") or []]
    except (KeyError, TypeError, BoundsError) as exc:
        raise TraceInvalid(f"malformed counterexample: {exc}") from exc
    if len(labels) + len(continuation) > MAX_STEPS:
        raise TraceInvalid(f"more than {MAX_STEPS} steps")
    if bounds.start == "legacy":
        # Its first step picks one of the zones every legacy run reaches, which the World finds by
        # exploring legacy mode: minutes at large bounds, too long for a request.
        raise TraceInvalid("a --start legacy trace: the viewer does not re-explore legacy mode to find its start")
    return bounds, labels, continuation


def _machine(world: World, state, k: int) -> dict[str, Any]:
    enactor, endpoint = world.who(k)
    st = world.machine(state.machines[k])
    lock = st.lock_value
    return {
        "enactor": enactor,
        "endpoint": endpoint,
        "task": getattr(st.task, "value", str(st.task)),
        "phase": getattr(st.phase, "value", str(st.phase)),
        "plan": st.plan.version if st.plan else None,
        "done_version": st.done_version,
        "applied_version": st.applied_version,
        "holds_lock": bool(st.acquired),
        "lock_seen": lock.holder if lock else None,
        "losses": st.losses,
        "flip_failures": st.flip_failures,
        "stuck": st.stuck,
    }


def frames(doc: Any) -> dict[str, Any]:
    """Every state of the counterexample, the initial one first, each with the step that led to it."""
    if isinstance(doc, dict) and doc.get("format") == CELLS_FORMAT:  # `dnsctl check --cells --json`
        from lab.checker.cells import frames as cell_frames

        try:
            return cell_frames(doc, _machine, MAX_STEPS)
        except (ValueError, RuntimeError) as exc:
            raise TraceInvalid(str(exc)) from exc
    bounds, labels, continuation = parse_counterexample(doc)
    world = World(bounds)
    state = world.initial

    def frame(step: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "step": step,
            "endpoints": [trace.endpoint_summary(world, state, j) for j in range(world.n_endpoints)],
            "machines": [_machine(world, state, k) for k in range(len(state.machines))],
            "published": state.published,
        }

    out = [frame(None)]
    try:
        for n, label in enumerate(labels + continuation, start=1):
            step = trace.describe(world, state, label, n).as_json()
            step["continuation"] = n > len(labels)
            state = world.apply(state, label)[0]
            out.append(frame(step))
    except (KeyError, IndexError, TypeError, ValueError, AssertionError) as exc:
        raise TraceInvalid(f"step {len(out)} cannot be replayed: {exc}") from exc
    return {
        "mode": bounds.mode,
        "kind": doc.get("kind"),
        "invariants": doc.get("invariants") or [],
        "violations": doc.get("violations") or [],
        "steps": len(labels),
        "frames": out,
    }
