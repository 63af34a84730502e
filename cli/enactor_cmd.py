"""`dnsctl enactor`: run one enactor (protocol core + runner + HTTP status API), or, with
--dry-run, print the Route 53 change batches it would submit right now and submit nothing."""

from __future__ import annotations

import typer

from cli.client import err_console


def enactor(
    enactor_id: str = typer.Option("enactor-a", "--id", help="This enactor's name: the lock holder id and log field."),
    az: str = typer.Option("use1-az1", help="Availability zone this enactor runs in (shown in /status)."),
    host: str = typer.Option("127.0.0.1", help="Address of the status API."),
    port: int = typer.Option(8081, help="Port of the status API."),
    version_guard: bool | None = typer.Option(
        None, "--version-guard/--no-version-guard",
        help="Guarded (default) or legacy October-2025 behaviour; default from DNSCTL_VERSION_GUARD, else guarded.",
    ),
    poll_interval: float | None = typer.Option(None, help="Seconds between plan store polls (default 1.0)."),
    keep_plans: int | None = typer.Option(None, help="Keep the trees of this many plans before the applied one (default 5)."),
    allow_chaos: bool = typer.Option(False, "--allow-chaos", help="Allow fault injection (the race lab's chaos routes)."),
    dry_run: bool = typer.Option(
        False, "--dry-run",
        help="Print the Route 53 change batches this enactor would submit now for the newest plan, per endpoint; "
        "take no lock, write nothing, serve nothing.",
    ),
    endpoint: list[str] = typer.Option([], help="With --dry-run: only this endpoint (repeat for more; default: all of the plan)."),
    as_json: bool = typer.Option(False, "--json", help="With --dry-run: print the batches as JSON (boto3's Changes)."),
    cell: str | None = typer.Option(
        None, "--cell", help="Work for this cell only (cell-N: its plan stream and its endpoints' zones; default DNSCTL_CELL, else the regional system)."
    ),
) -> None:
    """Apply the newest plan to Route 53, one lock-protected machine per endpoint."""
    from cli.service_start import require_port, settings_from_flags
    from enactor.settings import EnactorSettings

    overrides = _stack_defaults(version_guard) if dry_run else {}
    settings = settings_from_flags(EnactorSettings, "enactor", {
        **overrides,
        "enactor_id": enactor_id,
        "az": az,
        "host": host,
        "port": port,
        "version_guard": version_guard if version_guard is not None else overrides.get("version_guard"),
        "poll_interval": poll_interval,
        "keep_plans": keep_plans,
        "allow_chaos": allow_chaos or None,
        "cell": cell,
    })
    if dry_run:
        _dry_run(settings, endpoint, as_json)
        return
    if endpoint or as_json:
        raise typer.BadParameter("--endpoint and --json go with --dry-run", param_hint="--dry-run")
    from enactor.api import create_app
    from enactor.runner import Runner
    from services.logs import configure
    from services.web import serve

    configure(process=settings.enactor_id)
    require_port(settings.host, settings.port)
    app = create_app(Runner(settings))
    serve(app, settings.host, settings.port)


def _stack_defaults(version_guard: bool | None) -> dict:
    """A dry run from a second shell decides as the described stack's enactors do: in its mode and
    with its plan public key, unless a flag or the environment says otherwise."""
    import os

    from services import stack_file
    from services.plan.keys import PUBLIC_KEY_ENV, PUBLIC_KEY_FILE, PUBLIC_KEY_FILE_ENV

    stack = stack_file.read()
    if stack is None:
        return {}
    out: dict = {}
    if version_guard is None and "DNSCTL_VERSION_GUARD" not in os.environ and stack.mode in ("guarded", "legacy"):
        out["version_guard"] = stack.mode == "guarded"
    key = stack.state_dir / PUBLIC_KEY_FILE
    if not (os.environ.get(PUBLIC_KEY_ENV) or os.environ.get(PUBLIC_KEY_FILE_ENV)) and key.exists():
        out["plan_public_key_file"] = key
    return out


def _dry_run(settings, only: list[str], as_json: bool) -> None:
    """What this enactor would submit now: the plan as its runner reads it (freeze marker first,
    signatures checked with its key), the zones as Route 53 holds them, its own core settings."""
    from botocore.exceptions import BotoCoreError, ClientError
    from rich.console import Console

    from cli.plan_preview import preview_plan, show
    from enactor import protocol as p
    from enactor.runner import PlanSource
    from services.aws_clients import route53_client
    from services.plan.store import PlanStore

    store = PlanStore(settings.bucket, settings.region, verifier=settings.plan_verifier())
    observation = PlanSource(store, max_age_s=0).read()
    if isinstance(observation, p.RequestFailed):
        err_console.print(f"[red]error:[/red] {observation.error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if isinstance(observation, p.Frozen):
        err_console.print(f"frozen: {observation.reason}; {settings.enactor_id} would submit nothing until `dnsctl thaw`",
                          highlight=False, soft_wrap=True)
        if as_json:
            show(Console(), [], "", as_json)
        return
    if observation.invalid is not None:
        bad = observation.invalid
        err_console.print(f"the newest plan is invalid ({bad.key}: {bad.reason}): {settings.enactor_id} would submit "
                          "nothing and keep DNS as it is (plan_rejected)", highlight=False, soft_wrap=True)
        if as_json:
            show(Console(), [], "", as_json)
        return
    plan = observation.plan
    if plan is None:
        err_console.print(f"[red]error:[/red] no plan has been published yet in s3://{settings.bucket}", highlight=False)
        raise typer.Exit(1)
    try:
        results = preview_plan(settings.core(), plan, route53_client(), only)
    except (ClientError, BotoCoreError) as exc:
        err_console.print(f"[red]error:[/red] cannot read the zones of plan {plan.version} from Route 53: {exc}", highlight=False)
        raise typer.Exit(1) from exc
    mode = "guarded" if settings.version_guard else "legacy"
    show(Console(), results, f"dry run of {settings.enactor_id} ({mode}) on the newest plan, {plan.version} "
         "(nothing is submitted, no lock is taken):", as_json)


def register(app: typer.Typer) -> None:
    app.command("enactor")(enactor)
