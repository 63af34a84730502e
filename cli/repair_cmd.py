"""`dnsctl repair ENDPOINT`: point the root and rollback at an intact tree, straight on Route 53.

    dnsctl repair dynamodb.us-east-1.amazonaws.com                  newest intact tree (--newest)
    dnsctl repair dynamodb.us-east-1.amazonaws.com --to-version 14  that plan's tree (rebuilt if gone)
    dnsctl repair ... --dry-run                                     print the batches, change nothing
    dnsctl repair ... --break-lock [--yes]                          take a lock a stuck enactor holds
    dnsctl repair --all                                             every endpoint that needs it

Works with every enactor and the planner stopped (lab/repair.py). Reads Route 53 with boto3's
standard configuration (AWS_ENDPOINT_URL for the emulator) and, only to rebuild a tree, the plan
store (DNSCTL_BUCKET, DNSCTL_REGION). Its events go to repair.log in the stack's run folder (or
<state dir>/logs/ with no stack), so
`dnsctl timeline --stack` shows the operator's repair beside the enactors' story.
"""

from __future__ import annotations

import json
import time

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)


def repair(
    endpoint: str = typer.Argument(None, help="The endpoint (DNS name) to repair; or --all.", show_default=False),
    all_endpoints: bool = typer.Option(False, "--all", help="Repair every endpoint whose root dangles or whose rollback or active tree is missing; leave healthy ones alone."),
    newest: bool = typer.Option(False, "--newest", help="Point at the newest intact tree (the default)."),
    to_version: int | None = typer.Option(None, "--to-version", min=1, help="Point at plan N's tree (rebuilt from the plan store if none is intact)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the change batches and change nothing."),
    break_lock: bool = typer.Option(False, "--break-lock", help="Take the lock even if an enactor holds it (asks first)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before breaking a lock."),
    bucket: str | None = typer.Option(None, help="Plan store bucket, to rebuild a tree (default DNSCTL_BUCKET or dnsctl-plans)."),
    region: str | None = typer.Option(None, help="Plan store region (default DNSCTL_REGION or us-east-1)."),
    as_json: bool = typer.Option(False, "--json", help="Print what was (or would be) done as JSON (a list with --all)."),
) -> None:
    """Repair an endpoint without the enactor: root and rollback to an intact tree, through the lock."""
    import os

    from services import auth, stack_file
    from services.aws_clients import route53_client
    from services.logs import configure
    from services.plan.store import PlanStore
    if newest and to_version is not None:
        raise typer.BadParameter("give --newest or --to-version, not both")
    if (endpoint is None) == (not all_endpoints):
        raise typer.BadParameter("give one ENDPOINT, or --all", param_hint="ENDPOINT")
    stack = stack_file.read()
    # Beside the stack's own logs (its run folder), so `dnsctl timeline --stack` shows the repair in the story.
    log_dir = stack.log_dir if stack and stack.log_dir else auth.state_dir() / "logs"
    if stack and stack.run_id:
        os.environ[stack_file.RUN_ID_ENV] = stack.run_id  # the operator's repair is part of that run's story
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        configure(process="repair", stream=open(log_dir / "repair.log", "a", buffering=1))  # noqa: SIM115 - the log of this run
    except OSError:
        configure(process="repair", stream=open(os.devnull, "w"))  # noqa: SIM115 - no state dir to log into
    route53 = route53_client()
    store = PlanStore.from_env(bucket, region)
    if not all_endpoints:
        code, report = _repair_one(route53, store, endpoint, to_version, dry_run, break_lock, yes, as_json)
        if as_json and report is not None:
            typer.echo(json.dumps(report, indent=2))
        raise typer.Exit(code)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        with err.status("reading every endpoint from Route 53 ..."):
            targets, healthy = _needing_repair(route53)
    except (BotoCoreError, ClientError) as exc:
        err.print(f"[red]error:[/red] Route 53: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    if not as_json:
        for name in healthy:
            console.print(f"[green]healthy[/green]: {name} (left alone)", highlight=False)
        if not targets:
            console.print("nothing to repair: every endpoint's root, active and rollback trees are intact")
    codes, reports = [], []
    for name in targets:
        code, report = _repair_one(route53, store, name, to_version, dry_run, break_lock, yes, as_json)
        codes.append(code)
        reports.append(report)
    if as_json:
        typer.echo(json.dumps({"repaired": reports, "healthy": healthy}, indent=2))
    raise typer.Exit(max(codes, default=0))


def _needing_repair(route53) -> tuple[list[str], list[str]]:
    """Endpoints (from Route 53 alone) whose root dangles or whose active or rollback tree is missing or incomplete."""
    from services.dns.explain import endpoint_views
    from services.dns.snapshot import load_snapshot

    broken, healthy = [], []
    for view in endpoint_views(load_snapshot(route53)):
        if not view.root:
            continue  # no plan applied yet: nothing to point back at
        active_bad = view.active is None or not view.active.exists or not view.active.complete
        rollback_bad = view.rollback_tree is not None and not (view.rollback_tree.exists and view.rollback_tree.complete)
        (broken if view.dangling or active_bad or rollback_bad else healthy).append(view.endpoint.rstrip("."))
    return broken, healthy


def _repair_one(route53, store, endpoint: str, to_version, dry_run: bool, break_lock: bool, yes: bool, as_json: bool) -> tuple[int, dict | None]:
    """Repair one endpoint; (exit code, its JSON report or None)."""
    from lab.repair import LockHeld, RepairError, describe_change, execute, prepare

    try:
        with err.status(f"reading {endpoint} from Route 53 ..."):
            plan = prepare(route53, endpoint, to_version=to_version, break_lock=break_lock, store=store)
    except RepairError as exc:
        err.print(f"[red]error:[/red] {endpoint}: {exc}", highlight=False)
        return (3 if isinstance(exc, LockHeld) else 2), None
    if plan.breaks_lock and not dry_run and not yes:
        held = plan.view.lock_value
        assert held is not None
        question = (f"{held.holder} holds the lock of {plan.endpoint.rstrip('.')} for {held.expires - time.time():.0f} s more. "
                    "Take it (its next batch will fail)?")
        if not typer.confirm(question, default=False):
            err.print("not repaired: the lock was left to its holder")
            return 1, None

    if not as_json:
        _describe(plan, describe_change)
    if dry_run:
        if not as_json:
            console.print("[yellow]dry run: nothing was changed[/yellow]")
        return 0, _json(plan, None, describe_change)
    with err.status(f"applying {len(plan.batches)} change batch(es) to {plan.endpoint.rstrip('.')} and waiting for INSYNC ..."):
        result = execute(route53, plan)
    if as_json:
        pass
    elif result.ok:
        after = result.after
        assert after is not None
        console.print(f"[green]repaired[/green]: {plan.endpoint.rstrip('.')} serves plan {after.active_version} "
                      f"(tree {plan.target.tree_id}); {len(result.change_ids)} change batch(es) accepted", highlight=False)
    else:
        err.print(f"[red]not repaired:[/red] {result.error or 'the root still does not serve an intact tree'}", highlight=False)
    return (0 if result.ok else 1), _json(plan, result, describe_change)


def _describe(plan, describe_change) -> None:
    view = plan.view
    console.print(f"[bold]{plan.endpoint.rstrip('.')}[/bold] (hosted zone {plan.zone_id})", highlight=False)
    for r in view.roots:
        tid = view.root_targets().get(r.type)
        tree = view.tree(tid)
        state = "[red]MISSING (dangling)[/red]" if tree is None or not tree.complete else f"plan {tree.version}"
        console.print(f"  root {r.type} -> {tid or r.alias}: {state}", highlight=False)
    for r in view.rollbacks:
        tid = view.rollback_targets().get(r.type)
        tree = view.tree(tid)
        state = "[red]missing[/red]" if tree is None or not tree.complete else f"plan {tree.version}"
        console.print(f"  rollback {r.type} -> {tid}: {state}", highlight=False)
    intact = ", ".join(f"plan {t.version} ({t.tree_id})" for t in plan.intact) or "none"
    console.print(f"  intact trees: {intact}", highlight=False)
    lock = view.lock_value
    if lock is None:
        console.print("  lock: none")
    else:
        left = lock.expires - plan.now
        console.print(f"  lock: {lock.holder}, " + (f"[red]held for {left:.0f} s more[/red]" if left > 0 else "expired")
                      + (" -> will be broken" if plan.breaks_lock else ""), highlight=False)
    verb = "rebuild and point at" if plan.target.rebuild else "point at"
    console.print(f"repair: {verb} tree {plan.target.tree_id} of plan {plan.target.version}: {plan.target.why}", highlight=False)
    for i, batch in enumerate(plan.batches, 1):
        console.print(f"batch {i}/{len(plan.batches)} ({batch.purpose}, {len(batch.changes)} changes):", highlight=False)
        for change in batch.changes:
            console.print("  " + describe_change(change), highlight=False, soft_wrap=True)


def _json(plan, result, describe_change) -> dict:
    return {
        "endpoint": plan.endpoint.rstrip("."),
        "zone_id": plan.zone_id,
        "tree_id": plan.target.tree_id,
        "plan_version": plan.target.version,
        "rebuild": plan.target.rebuild,
        "why": plan.target.why,
        "lock": plan.lock_verdict,
        "breaks_lock": plan.breaks_lock,
        "batches": [{"purpose": b.purpose, "changes": [describe_change(c) for c in b.changes]} for b in plan.batches],
        "dry_run": result is None,
        "ok": None if result is None else result.ok,
        "error": None if result is None else result.error,
        "active_version_after": None if result is None or result.after is None else result.after.active_version,
    }


def register(app: typer.Typer) -> None:
    app.command("repair")(repair)
