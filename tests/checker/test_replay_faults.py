"""`dnsctl check --replay` carries out every fault the checker can put in a step, on the emulator.

For each fault (a lost reply, a failed request, a change left PENDING, a plan object that fails
the schema) a run the model allows is built with the World (a fixed schedule that takes the fault
wherever the model enables it), written with the writer `--json` uses (lab/checker/trace.py), and
replayed by `dnsctl check --replay` in a subprocess against a real emulator process. The replay
checks every step's outcome and every zone against the model, so a fault carried out wrongly (a
lost reply's batch not submitted, a failed request carried out, an invalid object the store's
newest() does not find or that reads as no plan) shows as DIFFERS and a non-zero exit. Last, a
real counterexample of the checker (seeded legacy random walks with every fault on) replays to
the empty answer.
"""

from __future__ import annotations

import json

import pytest

from lab.checker import trace
from lab.checker.explore import Counterexample
from lab.checker.world import FAIL, FREEZE, LOST_REPLY, PENDING, PUBLISH, PUBLISH_INVALID, Bounds, World
from tests.checker.schedules import walk
from tests.checker.test_cli import EP, dnsctl

SMALL = {"guard": True, "enactors": 2, "plans": 3, "keep_plans": 1, "lost_replies": 0}


def _kind(world: World, state, label) -> str:
    """What a fault hits: the planner, or the machine's phase (a lost reply: the batch's purpose and
    whether Route 53 applies it)."""
    if label == PUBLISH_INVALID:
        return "planner"
    st = world.machine(state.machines[label[1]])
    if label[2] == LOST_REPLY:
        return f"{world.core.request_of(st).purpose}/{world.move(state, label[1], LOST_REPLY).outcome}"
    return st.phase


def _with(world: World, fault):
    """`walk`'s `prefer`: take `fault` wherever it is enabled on something it has not hit yet
    (`_kind`), until its budget is spent."""
    hit = set()

    def prefer(state, enabled):
        for label in enabled:
            if (label == fault or label[2:] == (fault,)) and _kind(world, state, label) not in hit:
                hit.add(_kind(world, state, label))
                return label
        return None

    return prefer


def _trace_file(tmp_path, bounds: Bounds, fault) -> tuple[str, dict]:
    world = World(bounds)
    labels = walk(world, 160, _with(world, fault))
    run = Counterexample("run", (), labels, 0.0, 0)
    path = tmp_path / "run.json"
    trace.write_json(path, trace.report(world, run))
    return str(path), json.loads(path.read_text())


def _replay_ok(emulator, path: str) -> str:
    replay = dnsctl("check", "--replay", path, env=emulator.env())
    out = replay.stdout + replay.stderr
    assert replay.returncode == 0, out
    assert "every step did on Route 53 what it did in the model" in replay.stdout and "DIFFERS" not in out
    return replay.stdout


@pytest.mark.parametrize(
    ("extra", "fault", "outcomes"),
    [
        # Lost replies of batches Route 53 applies (a build, a flip) and of one it refuses (plan 2's poison build).
        ({"lost_replies": 4, "refused_plans": 1}, LOST_REPLY, ("lost_reply_accepted", "lost_reply_rejected")),
        # Legacy: the guarded core reads targeted pages (phase "read"), where the model injects no failure.
        ({"failed_requests": 3, "guard": False}, FAIL, ("failed",)),
        ({"insync_waits": 1}, PENDING, ("pending",)),
        ({"freezes": 2}, FREEZE, ("frozen",)),  # (replayed before these: it shares their path now)
    ],
    ids=["lost_reply", "fail", "pending", "freeze"],
)
def test_a_run_with_an_injected_fault_replays_on_the_emulator(emulator, tmp_path, extra, fault, outcomes):
    path, data = _trace_file(tmp_path, Bounds(**{**SMALL, **extra}), fault)
    faulty = [s for s in data["steps"] if s["label"][2:] == [fault]]
    assert faulty, "the run has no step with the fault"
    assert {s["outcome"] for s in faulty} >= set(outcomes)
    out = _replay_ok(emulator, path)
    for s in faulty:
        # The step was carried out with the fault, with the model's outcome, and agreed.
        assert f"  {s['n']:>3}. {s['text']} [{s['outcome']}] ... ok" in out
    if fault == FAIL:
        # A plan read, a listing and a batch each failed on their way out.
        assert {_phase_of(s) for s in faulty} == {"plan", "list", "batch"}
    assert any(s["label"][2:] == [""] for s in data["steps"][faulty[-1]["n"]:]), "nothing happened after the last fault"


def _phase_of(step: dict) -> str:
    """The phase a failed request was in, from its step text (the request's class name)."""
    return {"ReadNewestPlan": "plan", "ListRecords": "list", "SubmitBatch": "batch"}[step["text"].split("'s ")[1].split(" ")[0]]


def test_an_invalid_plan_object_replays_on_the_emulator(emulator, tmp_path):
    path, data = _trace_file(tmp_path, Bounds(**{**SMALL, "invalid_plans": 1}), PUBLISH_INVALID)
    labels = [tuple(s["label"]) for s in data["steps"]]
    assert PUBLISH_INVALID in labels
    at = labels.index(PUBLISH_INVALID)
    superseded = labels.index(PUBLISH, at)  # the valid plan that follows it
    # Plan reads meet the invalid object (the core logs plan_rejected) before the next plan supersedes it,
    # and the next plan is applied after it.
    rejected = [s for s in data["steps"][at:superseded] if any(note["event"] == "plan_rejected" for note in s["notes"])]
    assert rejected
    assert data["final"][0]["root_plan"] == 3, data["final"]
    out = _replay_ok(emulator, path)
    assert f"  {at + 1:>3}. the newest object in the plan store fails the schema (after plan 1, injected) ... ok" in out


FAULTS = ("--lost-replies", "1", "--failed-requests", "2", "--insync-waits", "1", "--invalid-plans", "1")


def test_a_legacy_counterexample_with_every_fault_replays_and_empties_the_name(emulator, tmp_path):
    # A real counterexample of the checker: seeded random walks of legacy with every fault on.
    path = tmp_path / "race.json"
    run = dnsctl("check", "--guard", "off", "--random", "40", "--seed", "1", "--ignore", "ServedIsApplied", *FAULTS, "--json", str(path))
    assert run.returncode == 1, run.stdout + run.stderr
    data = json.loads(path.read_text())
    assert "NoEmptyAnswer" in data["invariants"]
    labels = [tuple(s["label"]) for s in data["steps"] + data["continuation"]]
    # If the model's walks change, this seed may stop meeting every fault: pick another seed that does.
    assert PUBLISH_INVALID in labels and {LOST_REPLY, FAIL, PENDING} <= {lb[2] for lb in labels if lb[0] == "step"}, labels
    out = _replay_ok(emulator, str(path))
    assert f"{EP} (zone " in out and "A -> NOERROR with 0 addresses" in out
