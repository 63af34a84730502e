"""`dnsctl check --cells`: the cellular world (lab/checker/cells.py) composed of cell Worlds in their
own namespaces and the real cell-map core; CellIsolation and NoEmptyAnswer through the CNAME, the
legacy race's blast radius, both planted faults caught, and the command as a real process."""

from __future__ import annotations

import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.checker import cells as model
from lab.checker.world import BoundsError
from services.cells.naming import cell_endpoint, in_cell
from services.dns.answer import resolve
from services.plan.model import Plan
from tests.checker.test_cli import dnsctl

ACCOUNT_1, ACCOUNT_2, ACCOUNT_3 = model.account_ids(2)  # in cell-1, in cell-2, legacy (map 2 moves it to cell-2)
# The smallest bounds that still hold the October race in cell-1 (two legacy enactors, plans 1..4 from a
# live start) beside a cell-2 that serves its plan 1, and the map move of ACCOUNT_3.
RACE = dict(guarded_plans=1)
QUIET = dict(legacy=())  # every cell guarded, one enactor each, plans 1..2


@pytest.fixture(scope="module")
def race():
    world = model.CellsWorld(model.cells_bounds(**RACE))
    return world, model.check(world)


def _answers_of(world, state, names):
    zones = world.concrete_zones(state)
    return {(n, rt): world.answer(zones, n, rt) for n in names for rt in model.RECORD_TYPES}


def test_cell_plans_are_the_planners_in_each_cells_own_namespace():
    bounds = model.cells_bounds().cells[0]
    plans = {cell: model.cell_plans(cell, bounds) for cell in ("cell-1", "cell-2")}
    addresses = {}
    for cell, ps in plans.items():
        assert [p.version for p in ps] == [1, 2, 3, 4]
        for plan in ps:
            assert Plan.from_json(plan.to_json()) == plan and plan.cell == cell  # valid, checksummed, stamped
            (ep,) = plan.endpoints
            assert ep.name == ep.hosted_zone == cell_endpoint(cell, "us-east-1") and ep.record_types == ("A", "AAAA")
            assert all(t.ipv4 and t.ipv6 for t in ep.targets)  # dual-stack in every plan, the one that drops AAAA included
        addresses[cell] = {a for p in ps for t in p.endpoints[0].targets for a in (*t.ipv4, *t.ipv6)}
    assert not addresses["cell-1"] & addresses["cell-2"]  # an answer tells whose it is
    world = model.CellsWorld(model.cells_bounds(**QUIET))
    for c, w in enumerate(world.worlds):
        zone = w.zone(world.concrete_initial.cells[c].zones[0]).zone
        assert all(in_cell(r.name, world.names[c], "us-east-1") for r in zone)


def test_the_live_start_answers_every_account_through_its_cname_as_the_dns_server_does():
    world = model.CellsWorld(model.cells_bounds(**QUIET))
    state = world.concrete_initial
    zones = world.concrete_zones(state)
    snapshot = world.snapshot(zones)
    targets = {ACCOUNT_1: "cell-1.ddb.us-east-1.api.aws.", ACCOUNT_2: "cell-2.ddb.us-east-1.api.aws.", ACCOUNT_3: "dynamodb.us-east-1.api.aws."}
    for account, name in zip(world.accounts, world.account_names, strict=True):
        for rtype in model.RECORD_TYPES:
            # Route 53 answers a CNAME into another hosted zone with the CNAME alone ...
            auth = resolve(snapshot, name, rtype, random.Random(0))
            assert [(r.type, r.value) for r in auth.answers] == [("CNAME", targets[account])]
            # ... and the resolver's chase ends at the target's addresses, on every branch.
            a = world.answer(zones, name, rtype)
            target = world.answer(zones, targets[account], rtype)
            assert a.cname == targets[account] and a.rcode == "NOERROR"
            assert a.served == target.served and a.served.addresses and a.served.empty_share == 0
    assert world._map_applied(state.map_zone) == 1 and state.maps == 1


def test_a_legacy_race_in_cell_1_empties_only_cell_1s_accounts_and_cell_2_is_untouched(race):
    world, result = race
    assert result.exhausted and not result.frontier and result.ok
    assert result.cell_states[0] > 1000 and result.states > result.cell_states[0]
    assert not [f for f in result.findings if f.invariant == model.CELL_ISOLATION]
    assert result.isolation_judged > result.zone_writes > 0
    # The blast radius: the race empties cell-1's account, nothing else, and ACCOUNT_3's move keeps its answer.
    assert result.lost == {ACCOUNT_1: {"cell-1"}}
    assert result.seen_in[ACCOUNT_3] == {"legacy", "cell-2"}
    accounts = [f for f in result.findings if f.subject == "accounts"]
    assert accounts and all(f.scope == "cell-1" and f.expected for f in accounts)
    shortest = model.reported(result)[-1]
    assert {v.endpoint for v in shortest.violations} == {ACCOUNT_1} and shortest.invariant == "NoEmptyAnswer"
    own = {f.invariant for f in result.findings if f.subject == "endpoint"}
    assert own == {"NoEmptyAnswer", "NeverDeleteActive"} and all(f.scope == "cell-1" for f in result.findings if f.subject == "endpoint")
    # Along the counterexample, cell-2's names answer exactly as at the start, through the DNS data plane.
    steps, end = model.run_steps(world, shortest.labels)
    cell_2 = (world.endpoints[1], world.account_names[1])
    start = _answers_of(world, world.concrete_initial, cell_2)
    state = world.concrete_initial
    for label in shortest.labels:
        state = world.apply_concrete(state, label)[0]
        assert _answers_of(world, state, cell_2) == start
    assert world.answer(world.concrete_zones(end), world.account_names[0], "A").served.empty_share == 1
    assert all(s.text.startswith("[cell-1]") for s in steps if s.label[0] == "cell")
    lines = model.verdict_lines(result)
    assert any(line.startswith("CellIsolation holds") for line in lines)
    assert "blast radius (accounts ever mapped there / lost DNS while there): cell-1 1 of 1 lost DNS; cell-2 0 of 2 lost DNS; legacy 0 of 1 lost DNS" in lines
    assert lines[-1].startswith("verdict: the cells hold: every race stays inside cell-1")


def test_an_enactor_of_cell_1_in_cell_2s_namespace_breaks_cell_isolation():
    world = model.CellsWorld(model.cells_bounds(**QUIET, fault=model.FAULT_ENACTOR_IN_OTHER_CELL))
    assert world.owners == (("cell-1",), ("cell-2", "cell-1"))
    result = model.check(world)
    assert not result.ok
    (f,) = [f for f in result.findings if f.invariant == model.CELL_ISOLATION]
    assert not f.expected and "cell-2/enactor-b (cell-1's management) changed what" in f.violations[0].message
    assert "a name of cell-2" in f.violations[0].message
    last = f.labels[-1]
    assert last[:2] == ("cell", 1) and world.owner(last) == "cell-1"
    assert not result.lost  # every account still answers: what broke is isolation, not an answer
    # The same bounds without the misplaced enactor hold.
    clean = model.check(model.CellsWorld(model.cells_bounds(**QUIET)))
    assert clean.ok and not clean.findings and not clean.lost


def test_a_move_that_deletes_the_old_cname_first_leaves_the_account_without_an_answer():
    world = model.CellsWorld(model.cells_bounds(**QUIET, fault=model.FAULT_CELLMAP_DELETE_FIRST))
    assert world.cellmap_core.__name__.endswith("_mutant_cellmap_delete_first")
    result = model.check(world)
    assert not result.ok and result.lost == {ACCOUNT_3: {"none"}}
    (f,) = result.failures
    assert (f.invariant, f.subject, f.scope) == ("NoEmptyAnswer", "accounts", "none")
    assert "NXDOMAIN" in f.violations[0].message and ACCOUNT_3 in f.violations[0].message
    steps, _ = model.run_steps(world, f.labels)
    assert f"DELETE {ACCOUNT_3} CNAME dynamodb.us-east-1.api.aws" in steps[-1].text
    # The real cell-map core moves it with one UPSERT: the account answers in every state.
    real = model.check(model.CellsWorld(model.cells_bounds(**QUIET, map_enactors=2)))
    assert real.ok and not real.lost and real.seen_in[ACCOUNT_3] == {"legacy", "cell-2"}


_WALK_WORLD = model.CellsWorld(model.cells_bounds(legacy=(), guarded_enactors=2, guarded_plans=3, map_enactors=2, maps=3))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 60))
def test_the_composition_is_the_product_of_its_parts(seed, steps):
    """On any run, each cell evolves exactly as its own World alone does on its own labels, the
    map's steps touch no cell, and every account's chain ends where the DNS server's answer does."""
    world = _WALK_WORLD
    rng = random.Random(seed)
    state = world.concrete_initial
    alone = list(state.cells)
    for _ in range(steps):
        labels = list(world.labels(state))
        label = labels[rng.randrange(len(labels))]
        after = world.apply_concrete(state, label)[0]
        if label[0] == "cell":
            c = label[1]
            alone[c] = world.worlds[c].apply(alone[c], label[2])[0]
            assert after.map_zone == state.map_zone and after.cells[:c] + after.cells[c + 1:] == state.cells[:c] + state.cells[c + 1:]
        else:
            assert after.cells == state.cells
        state = after
        assert list(state.cells) == alone
    zones = world.concrete_zones(state)
    snapshot = world.snapshot(zones)
    for name in world.account_names:
        a = world.answer(zones, name, "A")
        assert a.served.empty_share == 0  # guarded cells and the real map: never empty
        drawn = resolve(snapshot, a.cname, "A", random.Random(seed))
        assert {r.value for r in drawn.answers if r.type == "A"} <= a.served.addresses


def test_bad_bounds_and_bad_traces_are_refused_with_a_reason():
    with pytest.raises(BoundsError, match="--cells must be 2..3"):
        model.cells_bounds(cells=4)
    with pytest.raises(BoundsError, match="--fault must be one of"):
        model.cells_bounds(fault="typo")
    with pytest.raises(BoundsError, match="cell-9 not among"):
        model.cells_bounds(legacy=("cell-9",))
    with pytest.raises(model.CellsTraceInvalid, match="format dnsctl-check-cells/1"):
        model.read_trace({"format": "dnsctl-check/1"})
    with pytest.raises(model.CellsTraceInvalid, match="malformed"):
        model.read_trace({"format": model.FORMAT, "bounds": {"cells": []}, "steps": []})
    with pytest.raises(model.CellsTraceInvalid, match="not a step"):
        model.read_trace({"format": model.FORMAT, "bounds": model.cells_bounds().as_json(), "steps": [{"label": ["cell", 0, "x"]}]})


def test_check_cells_as_a_process_writes_a_trace_the_console_opens(tmp_path):
    from services.console.trace_view import TraceInvalid, frames

    path = tmp_path / "cells.json"
    run = dnsctl("check", "--cells", "2", "--legacy-cells", "none", "--fault", "cellmap_delete_first", "--json", str(path), timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert "dnsctl check --cells 2: cell-1 guarded (1 enactor, plans 1..2), cell-2 guarded" in out
    assert "states (" in out and "states/s; all of them" in out
    # A global state is one of each part's: the total is the product of the parts' counts.
    parts = re.search(r"explored ([\d,]+) states .*\n  the parts: cell-1 (\d+) states, cell-2 (\d+) states, the cell map (\d+)", out)
    assert parts, out
    total, c1, c2, m = (int(g.replace(",", "")) for g in parts.groups())
    assert c1 == c2 > 1 and total == c1 * c2 * m, out
    assert "CellIsolation holds" in out and f"NoEmptyAnswer through the CNAME: 1 of 3 accounts answered empty in some state, {ACCOUNT_3}" in out
    assert "verdict: broken: NoEmptyAnswer through the CNAME, an account left without a CNAME" in out
    doc = json.loads(path.read_text())
    assert doc["format"] == model.FORMAT and doc["invariants"] == ["NoEmptyAnswer"] and doc["ok"] is False
    view = json.loads(json.dumps(frames(doc)))  # what POST /api/trace sends the page
    assert view["steps"] == len(doc["steps"]) == len(view["frames"]) - 1
    last = {e["endpoint"]: e for e in view["frames"][-1]["endpoints"]}
    assert last[f"{ACCOUNT_3}.ddb.us-east-1.api.aws"]["dns"] == {"rcode": "NXDOMAIN", "addresses": [], "dangling": False}
    assert {m["enactor"] for m in view["frames"][0]["machines"]} == {"cell-1/enactor-a", "cell-2/enactor-a", "cellmap-enactor-a"}
    with pytest.raises(TraceInvalid, match="not a step"):
        frames({**doc, "steps": [{"label": ["map", "x"]}]})
    bad = dnsctl("check", "--cells", "2", "--random", "3", timeout=60)
    assert bad.returncode == 2 and "--random cannot be used with --cells" in bad.stderr


def test_the_consoles_trace_viewer_shows_a_cells_counterexample_in_a_browser(tmp_path):
    """The page itself (Debian's Chromium through Playwright) against a real `dnsctl console`
    process; its planner, enactors, prober and DNS point at a closed port: the viewer needs none."""
    from playwright.sync_api import sync_playwright

    from tests.console.stack import CHROMIUM, CHROMIUM_ARGS
    from tests.processes import ManagedProcess, free_port

    world = model.CellsWorld(model.cells_bounds(**QUIET, fault=model.FAULT_CELLMAP_DELETE_FIRST))
    result = model.check(world)
    path = tmp_path / "cells.json"
    path.write_text(json.dumps(model.as_json(world, result, model.reported(result)[0])))
    port, closed = free_port(), "http://127.0.0.1:1"
    env = {"DNSCTL_STATE_DIR": str(tmp_path), "AWS_ENDPOINT_URL": closed, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
           "AWS_DEFAULT_REGION": "us-east-1"}
    console = ManagedProcess("console", ["console", "--port", str(port), "--planner", closed, "--enactor", closed, "--prober", closed,
                                         "--dns", "127.0.0.1:1", "--log-dir", str(tmp_path / "logs")], env, tmp_path)
    try:
        console.wait_http(f"http://127.0.0.1:{port}/", timeout_s=60)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/")
                page.set_input_files("#trace-file", str(path))
                page.wait_for_selector("#trace-view:not([hidden]) #trace-endpoints article")
                assert "cells (legacy: none) counterexample (safety: NoEmptyAnswer), 4 steps" in page.inner_text("#trace-title")
                card = f"#trace-endpoints article[data-endpoint='{ACCOUNT_3}.ddb.us-east-1.api.aws']"
                assert "NOERROR with 1 address" in page.inner_text(card)  # the live start: it answers
                page.click("#trace-last")
                page.wait_for_selector(f"{card}.broken")
                assert "NXDOMAIN with 0 addresses" in page.inner_text(card)
                assert "cellmap-enactor-a" in page.inner_text("#trace-machines")
            finally:
                browser.close()
    finally:
        console.stop()
