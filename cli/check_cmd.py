"""`dnsctl check`: model-check the enactor's protocol core, print a shortest counterexample,
write it as JSON, or replay one against Route 53 (the emulator) and the DNS data plane."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

HELP = """Explore every interleaving of the enactors (the real core, enactor/protocol.py), the planner
publishing plans, lock losses, lease expiry and lost replies, against the real Route 53 change
engine, and judge what DNS serves (services/dns/answer.py), per record type: NoEmptyAnswer,
ServedIsApplied, RollbackIntact (guarded), NoHalfTree, NeverDeleteActive, Monotonic (guarded),
LockExclusion, CoreRaised/EngineRaised (the code under check raised) and Progress.

Breadth-first with state hashing, symmetry and partial-order reduction, so the first
counterexample is a shortest one. Exit status: 0 no counterexample, 1 counterexample found
(inverted by --expect-violation), 2 bad usage or input. With --replay: 0 when Route 53 did at
every step what the model did, 1 when it did not. --ablate: each part of the guard switched off
alone. --mutants: the mutant gate (python -m lab.checker.mutants).

The model (see lab/checker/world.py): sleeps and backoffs are abstract (any sleeping
enactor may wake at any later step); the clock stands still except for lease expiries, each of
which ages every lock lease by one TTL; a lock loss is an outside writer taking the lock just
before an enactor's first batch of a unit; a lost reply is a batch Route 53 carried out whose
answer never arrives. Default bounds: 3 enactors, 1 endpoint with 2 load balancers, plans 1..4
(plan 2 re-addresses a load balancer, plan 3 drops AAAA, plan 4 brings it back and adds a load
balancer) published at any moment, keep_plans 2, at most 1 lease expiry, 1 lock loss and 1 lost
reply; --freezes, --invalid-plans, --refused-plans, --zone-quota and --insync-waits add the freeze
switch, a plan object that fails the schema, a plan Route 53 refuses for its content, a zone quota
that makes the core trim retained trees or refuse a plan whose tree cannot fit, and INSYNC waits
that may end PENDING.
The guarded core's space at these bounds is 1.8 million states (after the reductions; about two
CPU minutes; 100 s on an idle core); use smaller bounds (e.g. --enactors 2 --plans 3 --keep-plans 1 --lost-replies 0,
a second) or --random for quick looks. 2+ endpoints are checked one endpoint at a time.

--cells N (lab/checker/cells.py): N cells, each a World of its own (its endpoint, hosted zone, plan
stream, enactors and lock), and the cell map applied by the real cell-map core, from a live start;
judges CellIsolation (no transition of one cell's management changes another cell's answers) and
NoEmptyAnswer through each account's CNAME. Legacy cells (--legacy-cells, default cell-1) may race:
their accounts are the blast radius; exit 0 when it stays inside them. Defaults: legacy cells 2
enactors and plans 1..4, guarded cells 1 enactor and plans 1..2, 1 map enactor, maps 1..2.
"""


def _on_off(value: str, flag: str) -> bool:
    v = value.strip().lower()
    if v in ("on", "true", "yes", "1"):
        return True
    if v in ("off", "false", "no", "0"):
        return False
    raise typer.BadParameter(f"{value!r}: use on or off", param_hint=flag)


def register(app: typer.Typer) -> None:
    @app.command("check", help=HELP)
    def check(
        ctx: typer.Context,
        guard: str = typer.Option("on", "--guard", help="on: the guarded core (the fix); off: legacy, as in October 2025."),
        enactors: int = typer.Option(3, "--enactors", help="Enactors (interchangeable: explored up to renaming)."),
        plans: int = typer.Option(4, "--plans", help="Plans the planner publishes (versions 1..N), at any moment."),
        endpoints: int = typer.Option(1, "--endpoints", help="Endpoints, each its own hosted zone and lock."),
        lbs: int = typer.Option(2, "--lbs", help="Load balancers per endpoint in the planner's fleet."),
        keep_plans: int = typer.Option(2, "--keep-plans", help="The core's keep_plans: clean-up keeps the last N plans' trees."),
        lease_expiries: int = typer.Option(1, "--lease-expiries", help="How often the clock may jump past every lock lease."),
        lock_losses: int = typer.Option(1, "--lock-losses", help="How many lock attempts an outside writer may win."),
        lost_replies: int = typer.Option(1, "--lost-replies", help="How many batches Route 53 applies (or rejects) while the reply is lost."),
        failed_requests: int = typer.Option(0, "--failed-requests", help="How many requests fail before anything is carried out."),
        freezes: int = typer.Option(0, "--freezes", help="How many plan reads or batches the freeze switch answers Frozen (nothing carried out)."),
        invalid_plans: int = typer.Option(0, "--invalid-plans", help="1: once, between two plans, the newest plan object fails the schema."),
        refused_plans: int = typer.Option(
            0, "--refused-plans", help="1: plan 2 carries a poison load balancer Route 53 refuses (its IPv4 address listed twice).",
        ),
        zone_quota: int = typer.Option(
            None, "--zone-quota", show_default=False,
            help="The hosted zone's record-set quota (GetHostedZoneLimit; Route 53 enforces it): small values make the core trim or refuse plans.",
        ),
        insync_waits: int = typer.Option(
            0, "--insync-waits",
            help="N >= 1: build batches return a change id, the flip waits for INSYNC (a step of its own), and up to N waits end still PENDING.",
        ),
        por: str = typer.Option("on", "--por", help="off: no partial-order reduction (plan reads once every plan is out go first)."),
        decompose: str = typer.Option("on", "--decompose", help="off: explore 2+ endpoints as one product instead of each endpoint alone."),
        subsume: str = typer.Option("on", "--subsume", help="off: also explore states that differ from a visited one only by more expiry or fault budget spent."),
        ignore: str = typer.Option("", "--ignore", help="Invariants not to report, comma separated (e.g. a known defect)."),
        ablate: bool = typer.Option(False, "--ablate", help="For each part of the guard, check with only that part off: which invariant fails."),
        mutants: bool = typer.Option(False, "--mutants", help="Run the mutant gate (python -m lab.checker.mutants) and exit."),
        start: str = typer.Option(
            "clean", "--start",
            help="clean: empty zones, no plan yet. damaged: October's end state (plans published, the root's tree deleted). "
                 "legacy: every zone the legacy core reaches at these bounds without faults, the guard deployed on it (use small bounds).",
        ),
        max_depth: int = typer.Option(None, "--max-depth", help="Stop exploring at this many steps (default: exhaust).", show_default=False),
        symmetry: str = typer.Option("on", "--symmetry", help="off: explore every renaming of the enactors too (slower)."),
        keep_going: bool = typer.Option(False, "--keep-going", help="Do not stop at the first counterexample; report one per invariant."),
        json_file: Path = typer.Option(None, "--json", help="Write the (first) counterexample to this file as JSON.", show_default=False),
        replay_file: Path = typer.Option(
            None, "--replay", show_default=False,
            help="Replay a counterexample written by --json against Route 53 (AWS_ENDPOINT_URL) with boto3, then ask the DNS data plane.",
        ),
        keep_replay: bool = typer.Option(False, "--keep-replay", help="Leave the replay's hosted zones and bucket in place for inspection."),
        aws: bool = typer.Option(False, "--aws", help="Allow --replay to create its zones and bucket in a real AWS account (refused without it)."),
        random_walks: int = typer.Option(None, "--random", help="Run N seeded random walks instead of exhausting.", show_default=False),
        seed: int = typer.Option(0, "--seed", help="Seed of --random (the same seed gives the same walks)."),
        walk_length: int = typer.Option(None, "--walk-length", help="Steps per random walk (default --max-depth or 100).", show_default=False),
        expect_violation: bool = typer.Option(False, "--expect-violation", help="Exit 0 only if a counterexample is found (for CI runs of legacy)."),
        cells: int = typer.Option(0, "--cells", help="Check N cells and the cell map instead (lab/checker/cells.py): CellIsolation, NoEmptyAnswer through the CNAME.", show_default=False),
        legacy_cells: str = typer.Option("cell-1", "--legacy-cells", help="With --cells: the cells that run legacy (they race), comma separated, or none; --guard off: every cell."),
        guarded_enactors: int = typer.Option(1, "--guarded-enactors", help="With --cells: enactors of each guarded cell (--enactors: of each legacy cell, default 2)."),
        guarded_plans: int = typer.Option(2, "--guarded-plans", help="With --cells: plans of each guarded cell (--plans: of each legacy cell, default 4)."),
        map_enactors: int = typer.Option(1, "--map-enactors", help="With --cells: the cell map's enactors."),
        maps: int = typer.Option(2, "--maps", help="With --cells: cell map versions (1 applied at the start, then one move each)."),
        fault: str = typer.Option("", "--fault", help="With --cells: plant enactor_in_other_cell or cellmap_delete_first (add --legacy-cells none: seconds, not minutes).", show_default=False),
    ) -> None:
        from lab.checker.world import Bounds, BoundsError

        if cells:
            raise typer.Exit(_check_cells(ctx, cells, legacy_cells, guarded_enactors, guarded_plans, map_enactors, maps, fault, json_file, expect_violation))
        if replay_file is not None:
            _replay(replay_file, keep_replay, aws)
            return
        if mutants:
            from lab.checker.mutants import main as gate_main

            raise typer.Exit(gate_main([]))
        try:
            bounds = Bounds(
                guard=_on_off(guard, "--guard"),
                enactors=enactors,
                plans=plans,
                endpoints=endpoints,
                lbs=lbs,
                keep_plans=keep_plans,
                lease_expiries=lease_expiries,
                lock_losses=lock_losses,
                start=start,
                max_depth=max_depth,
                symmetry=_on_off(symmetry, "--symmetry"),
                lost_replies=lost_replies,
                failed_requests=failed_requests,
                freezes=freezes,
                invalid_plans=invalid_plans,
                insync_waits=insync_waits,
                refused_plans=refused_plans,
                zone_quota=zone_quota,
                por=_on_off(por, "--por"),
                decompose=_on_off(decompose, "--decompose"),
                subsume=_on_off(subsume, "--subsume"),
            )
            ignored = _invariants(ignore)
        except BoundsError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        if random_walks is not None and (random_walks < 1 or (walk_length is not None and walk_length < 1)):
            typer.echo("error: --random and --walk-length must be at least 1", err=True)
            raise typer.Exit(2)
        if ablate:
            from lab.checker.ablation import ablate as run_ablation

            run_ablation(bounds, ignored, typer.echo)
            return
        found = _check(bounds, keep_going, json_file, random_walks, seed, walk_length, ignored)
        raise typer.Exit(_status(found, expect_violation))


def _invariants(text: str) -> tuple[str, ...]:
    from lab.checker.invariants import ALL
    from lab.checker.world import BoundsError

    names = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = [n for n in names if n not in ALL]
    if unknown:
        raise BoundsError(f"--ignore: unknown invariant {', '.join(unknown)}; known: {', '.join(ALL)}")
    return names


def _progress(states: int, depth: int, seconds: float) -> None:
    """Live progress of a long run, on stderr (stdout stays the report)."""
    rate = states / seconds if seconds > 0 else 0
    print(f"  ... {states:,} states, {rate:,.0f} states/s, depth {depth}, {seconds:.0f} s", file=sys.stderr, flush=True)


def _status(found: bool, expect_violation: bool) -> int:
    return 0 if found == expect_violation else 1


def _check(bounds, keep_going: bool, json_file: Path | None, walks: int | None, seed: int, walk_length: int | None, ignore=()) -> bool:
    from lab.checker import trace
    from lab.checker.explore import explore, progress_from, random_walks
    from lab.checker.invariants import PROGRESS
    from lab.checker.world import World

    world = World(bounds, ignore=ignore)
    echo = typer.echo
    b = bounds
    echo(
        f"dnsctl check: {b.mode} core ({world.core.__name__}), {b.enactors} enactor{'s' if b.enactors != 1 else ''} x "
        f"{b.endpoints} endpoint{'s' if b.endpoints != 1 else ''} ({b.lbs} LBs each), plans 1..{b.plans}, keep_plans {b.keep_plans}, "
        f"lease expiries <= {b.lease_expiries}, lock losses <= {b.lock_losses}, start {b.start}, "
        f"lost replies <= {b.lost_replies}, failed requests <= {b.failed_requests}, "
        + (f"freezes <= {b.freezes}, " if b.freezes else "")
        + ("an invalid plan object, " if b.invalid_plans else "")
        + (f"INSYNC waits (PENDING <= {b.insync_waits}), " if b.insync_waits else "")
        + ("plan 2 refused by Route 53, " if b.refused_plans else "")
        + (f"zone quota {b.zone_quota} record sets, " if b.zone_quota is not None else "")
        + f"symmetry {'on' if b.symmetry else 'off'}, partial-order reduction {'on' if b.por else 'off'}"
        + (f", each endpoint alone (decomposition {'on' if b.decompose else 'off'})" if b.endpoints > 1 else "")
        + (f", max depth {b.max_depth}" if b.max_depth else "")
    )
    if ignore:
        echo(f"not reported: {', '.join(ignore)}")
    if walks is not None:
        result = random_walks(world, walks, seed, walk_length)
        echo(
            f"{result.walks} random walk{'s' if result.walks != 1 else ''} (seed {seed}): {result.states:,} distinct states, "
            f"{result.transitions:,} steps in {result.elapsed_s:.2f} s ({result.states_per_s:,.0f} states/s)"
        )
    else:
        result = explore(world, stop_at_first=not keep_going, on_progress=_progress, progress_every_s=5.0)
        complete = "all of them" if result.exhausted and not result.frontier else (
            f"cut at depth {b.max_depth}: {result.frontier:,} states not expanded" if result.frontier else "stopped at the first counterexample")
        echo(
            f"explored {result.states:,} states ({result.transitions:,} transitions, depth {result.depth}) in "
            f"{result.elapsed_s:.2f} s: {result.states_per_s:,.0f} states/s; {complete}"
        )
        for j, part in enumerate(result.components):
            echo(f"  endpoint {world.endpoints[j].rstrip('.')}: {part.states:,} states in {part.elapsed_s:.2f} s"
                 + ("" if part.exhausted else " (not exhausted)"))
    cxs = result.counterexamples
    if not cxs:
        if walks is not None:
            echo("no counterexample on these walks (random walks check NoEmptyAnswer, NeverDeleteActive and Monotonic, not Progress)")
        else:
            from lab.checker.invariants import ALL, GUARDED_ONLY

            held = ", ".join(i for i in ALL if i != PROGRESS and i not in ignore and (b.guard or i not in GUARDED_ONLY))
            echo(f"invariants hold in every explored state and step: {held}")
            if result.progress_checked:
                note = f" ({result.frontier:,} unexpanded states at the depth bound counted as able to)" if result.frontier else ""
                echo(f"Progress holds: from every one of the {result.states:,} states, with the planner stopped, some continuation of fault-free steps "
                     f"brings every endpoint to the newest plan{note}")
            echo("no counterexample")
        return False
    first = cxs[0]
    echo(f"time to first counterexample: {first.found_after_s:.2f} s ({first.states_when_found:,} states explored)"
         + (f", walk {first.walk}" if first.walk is not None else ""))
    stuck = False
    if first.kind == "safety" and PROGRESS not in {v.invariant for c in cxs for v in c.violations}:
        end = world.initial
        for label in first.labels:
            end = world.apply(end, label)[0]
        can, seen = progress_from(world, end)
        if can is False:
            stuck = True
            echo(f"and from its end no continuation without new plans reaches the newest plan on every endpoint "
                 f"({seen:,} states looked at): Progress is broken too")
    for i, cx in enumerate(cxs):
        report = trace.report(world, cx, stuck=stuck and i == 0)
        echo("")
        for line in report.lines():
            echo(line)
        if i == 0 and json_file is not None:
            trace.write_json(json_file, report)
            echo(f"\ncounterexample written to {json_file}; replay it with: dnsctl check --replay {json_file}")
    return True


def _replay(path: Path, keep: bool, aws: bool = False) -> None:
    """Exit 0 when Route 53 did at every step what the model did (the run is reproduced)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from lab.checker import trace
    from lab.checker.replay import ReplayDiverged, Replayer
    from lab.checker.world import BoundsError
    from services.logs import configure
    from services.plan.store import StoreError

    configure(process="check", stream=sys.stderr, level="WARNING")  # boto3 pacing notes are not the story

    try:
        bounds, labels, continuation, data = trace.read_json(path)
    except (trace.TraceFileError, BoundsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if bounds.start == "legacy":
        typer.echo(f"error: {path} starts from a zone a legacy run left (--start legacy), which --replay cannot recreate on Route 53 "
                   "yet; its trace names the start's trees and the run that reached it", err=True)
        raise typer.Exit(2)
    if bounds.zone_quota is not None:
        typer.echo(f"error: {path} was checked with --zone-quota {bounds.zone_quota}, which --replay cannot give the hosted zones it "
                   "creates (the endpoint's quota is its own, GetHostedZoneLimit), so Route 53 would not refuse what the model's did", err=True)
        raise typer.Exit(2)
    if data.get("core") != "enactor.protocol":
        typer.echo(f"error: {path} is a counterexample of {data.get('core')!r}, not of enactor.protocol; replay it from Python with that core", err=True)
        raise typer.Exit(2)
    broken = ", ".join(data.get("invariants", []))
    what = f"counterexample ({broken})" if broken else "run (no invariant broken)"
    typer.echo(f"replaying {len(labels) + len(continuation)} steps of a {bounds.mode} {what} against Route 53 with boto3")
    from services.aws_clients import RealAccountRefused, refuse_real_aws, route53_client, s3_client

    route53, s3 = route53_client(), s3_client()
    try:
        for client in (route53, s3):
            refuse_real_aws(client, "create the replay's hosted zones and S3 bucket", aws)
    except RealAccountRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    replayer = None
    try:
        replayer = Replayer(bounds, labels, continuation=continuation, route53=route53, s3=s3)
        result = replayer.run()
    except ReplayDiverged as exc:
        typer.echo(f"the replay diverged from the model: {exc}", err=True)
        raise typer.Exit(1) from exc
    except (ClientError, BotoCoreError, StoreError) as exc:
        typer.echo(f"error: Route 53 / S3: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        if replayer is not None and not keep:
            replayer.cleanup()
    typer.echo("every step did on Route 53 what it did in the model")
    typer.echo("The endpoints as the DNS server reads them, answered by the data plane (services/dns/answer.py):")
    for end in result.endpoints:
        answer = f"{end.rcode} with {len(end.addresses)} address{'es' if len(end.addresses) != 1 else ''}"
        if end.addresses:
            answer += f" ({', '.join(end.addresses)})"
        root = f"root -> {end.root_tree}" + ("" if end.root_tree_exists else " (MISSING)") if end.root_tree else "no root"
        share = f"; {end.missing_share:.0%} of answers end at a missing record" if end.missing_share else ""
        typer.echo(f"  {end.endpoint} (zone {end.zone_id}): {root}; A -> {answer}{share}")
    if keep:
        typer.echo(f"left in place: hosted zones {', '.join(e.zone_id for e in result.endpoints)}, bucket {result.bucket}")


# -- `dnsctl check --cells N` ----------------------------------------------------------------------

# Options of the regional check that the cells check takes, and its own defaults for them.
CELLS_DEFAULTS = {"enactors": 2, "plans": 4, "lbs": 1, "keep_plans": 1, "lease_expiries": 0, "lock_losses": 0, "lost_replies": 0}
NOT_WITH_CELLS = ("ablate", "mutants", "replay_file", "random_walks", "start", "freezes", "invalid_plans", "failed_requests",
                  "ignore", "keep_going", "por")


def _check_cells(ctx: typer.Context, cells: int, legacy: str, guarded_enactors: int, guarded_plans: int, map_enactors: int,
                 maps: int, fault: str, json_file: Path | None, expect_violation: bool) -> int:
    """Exit 0 when the blast radius stays inside the legacy cells (CellIsolation holds, no account of a
    guarded cell or of the legacy name answers empty, every guarded cell keeps its own invariants)."""
    import json
    import time

    from lab.checker import cells as model
    from lab.checker.world import BoundsError

    # Typer vendors click: the source enum is compared by name.
    given = {k for k in ctx.params if getattr(ctx.get_parameter_source(k), "name", "") == "COMMANDLINE"}
    clash = sorted("--" + k.removesuffix("_file").replace("_walks", "").replace("_", "-") for k in given & set(NOT_WITH_CELLS))
    if clash:
        typer.echo(f"error: {', '.join(clash)} cannot be used with --cells", err=True)
        return 2
    opts = {k: ctx.params[k] if k in given else v for k, v in CELLS_DEFAULTS.items()}
    try:
        names = () if legacy.strip().lower() == "none" else tuple(x.strip() for x in legacy.split(",") if x.strip())
        if not _on_off(ctx.params["guard"], "--guard"):
            from services.cells.naming import cell_names

            names = cell_names(cells) if 2 <= cells <= model.MAX_CELLS else names
        bounds = model.cells_bounds(
            cells, names, guarded_enactors=guarded_enactors, guarded_plans=guarded_plans, map_enactors=map_enactors, maps=maps,
            symmetry=_on_off(ctx.params["symmetry"], "--symmetry"), fault=fault.strip(), max_depth=ctx.params["max_depth"], **opts)
        world = model.CellsWorld(bounds)
    except (BoundsError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    typer.echo(model.header_line(world))
    cpu = time.process_time()
    result = model.check(world, on_progress=_progress, progress_every_s=5.0)
    for line in model.verdict_lines(result, time.process_time() - cpu):
        typer.echo(line)
    shown = model.reported(result)
    for f in shown:
        typer.echo("")
        for line in model.finding_lines(world, f):
            typer.echo(line)
    if json_file is not None and shown:
        json_file.write_text(json.dumps(model.as_json(world, result, shown[0]), indent=2) + "\n")
        typer.echo(f"\ncounterexample written to {json_file}; open it in the console's trace viewer (dnsctl console)")
    return _status(not result.ok, expect_violation)
