"""`dnsctl console`: the live web console (services/console), port 8088 by default.

It reads what `dnsctl status` reads (Route 53 at most once per endpoint per second, the
planner, the enactors, the prober, DNS) and follows the stack's logs for the live timeline;
the page is read-only until the stack's token is pasted into it.
"""

from __future__ import annotations

from pathlib import Path

import typer


def _enactors(urls: list[str] | None) -> dict[str, str]:
    """The enactors by name: --enactor URLs in the stack's order (enactor-a, -b, -c, as the
    prober's flags), or NAME=URL for any other name."""
    from services.stack import ENACTORS

    if not urls:
        return {name: f"http://127.0.0.1:{port}" for name, _, port in ENACTORS}
    out = {}
    for i, value in enumerate(urls):
        name, sep, url = value.partition("=")
        if not sep:
            name, url = (ENACTORS[i][0] if i < len(ENACTORS) else f"enactor-{i + 1}"), value
        if not name or not url.startswith(("http://", "https://")):
            raise typer.BadParameter(f"give URL or NAME=URL (e.g. http://127.0.0.1:8081), not {value!r}", param_hint="--enactor")
        out[name] = url
    return out


def _cell_planners(values: list[str] | None) -> tuple[tuple[str, str], ...]:
    """--cell-planner cell-N=URL, checked: the console groups the view by these cells."""
    from services.cells.naming import BadCell, check_cell

    out = []
    for value in values or []:
        cell, sep, url = value.partition("=")
        try:
            check_cell(cell)
        except BadCell as exc:
            raise typer.BadParameter(f"give cell-N=URL, not {value!r}: {exc}", param_hint="--cell-planner") from exc
        if not sep or not url.startswith(("http://", "https://")):
            raise typer.BadParameter(f"give cell-N=URL (e.g. cell-1=http://127.0.0.1:8100), not {value!r}", param_hint="--cell-planner")
        out.append((cell, url))
    return tuple(out)


def console(
    host: str = typer.Option("127.0.0.1", help="Address the console binds to."),
    port: int = typer.Option(8088, help="Port of the console."),
    planner: str = typer.Option("http://127.0.0.1:8080", help="The planner's URL."),
    enactor: list[str] = typer.Option(
        None, "--enactor", help="URL (or NAME=URL) of an enactor; repeat in the order enactor-a, -b, -c (default: services/stack.py's on 127.0.0.1)."
    ),
    prober: str = typer.Option("http://127.0.0.1:8090", help="The prober's URL (alarms)."),
    dns: str = typer.Option("127.0.0.1:8053", help="HOST:PORT of the DNS data plane."),
    log_dir: Path = typer.Option(None, help="The stack's log directory (default: DNSCTL_STATE_DIR/logs)."),
    cell_planner: list[str] = typer.Option(
        None, "--cell-planner", help="cell-N=URL of a cell's planner; repeat per cell: the page groups endpoints, enactors and accounts by cell."
    ),
    cellmap_planner: str = typer.Option(
        None, "--cellmap-planner", help="URL of the cell map planner (`dnsctl up --accounts`): the accounts' zone is judged against its newest map."
    ),
) -> None:
    """Serve the live web console: trees, locks, enactors, alarms and the timeline, as they change."""
    import os

    from cli.dns_cmd import parse_host_port
    from cli.service_start import require_port
    from services.auth import state_dir
    from services.aws_clients import route53_client
    from services.console.actions import Actions, Targets
    from services.console.app import create_app
    from services.console.hub import Hub
    from services.console.log_tail import LogTail
    from services.console.poller import StatePoller
    from services.console.snapshot import APP_ID
    from services.logs import configure
    from services.prober.cell_groups import CellSources
    from services.prober.overview import Sources

    configure(process="console")
    # Every Route 53 call of this process says it is the console's (boto3's standard app id setting;
    # one the operator set is kept), so the account's side can count them.
    os.environ.setdefault("AWS_SDK_UA_APP_ID", APP_ID)
    enactors = _enactors(enactor)
    cells = _cell_planners(cell_planner)
    if cellmap_planner and not cellmap_planner.startswith(("http://", "https://")):
        raise typer.BadParameter(f"give a URL (e.g. http://127.0.0.1:8094), not {cellmap_planner!r}", param_hint="--cellmap-planner")
    try:
        dns_at = parse_host_port(dns)
    except (ValueError, typer.BadParameter) as exc:
        raise typer.BadParameter(str(exc), param_hint="--dns") from exc
    logs = log_dir if log_dir is not None else _run_log_dir(state_dir().resolve())
    require_port(host, port)
    # DNS may take 2 s, as the race's dig does: a loaded machine's slow answer is not "no answer",
    # and the console's Route 53 view does not wait for these readings (services/console/poller.py).
    sources = Sources(planner_url=planner, enactor_urls=tuple(enactors.items()), dns=dns_at, prober_url=prober, timeout_s=3.0,
                      dns_timeout_s=2.0)
    hub = Hub()
    targets = Targets(planner, enactors, prober, dns_at, state_dir().resolve(), logs)
    app = create_app(hub, StatePoller(sources, hub, route53_client, cells=CellSources(cells, cellmap_planner or None, prober)), LogTail(logs, hub), Actions(targets, hub))
    from services.web import serve

    serve(app, host, port)


def _run_log_dir(where: Path) -> Path:
    """This run's log folder: <state dir>/logs/<run id> when `dnsctl up` started the console (it
    passes the run id), else the folder a running stack describes, else <state dir>/logs."""
    import os

    from services import stack_file

    run_id = os.environ.get(stack_file.RUN_ID_ENV)
    if run_id:
        return where / "logs" / run_id
    described = stack_file.read(where)
    return (described.log_dir if described is not None else None) or where / "logs"


def register(app: typer.Typer) -> None:
    app.command("console")(console)
