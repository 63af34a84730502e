"""`dnsctl timeline`: merge the JSON logs of planner, enactors, prober and DNS server into one
timeline that points at the anomaly, not at its effects."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console


def _write(path: Path, text: str) -> None:
    # Write beside the target and rename, so a reader never opens half a page.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def timeline(
    files: list[Path] = typer.Argument(None, help="JSON-lines log files (one per process), in any order.", show_default=False),
    stack: bool = typer.Option(False, "--stack", help="Read the logs of the local stack's current (or last) run (<state dir>/logs/<run id>/)."),
    state_dir: Path = typer.Option(
        None, envvar="DNSCTL_STATE_DIR", help="State directory of `dnsctl up` (default .dnsctl).", show_default=False
    ),
    run: str = typer.Option(None, "--run", help="Show this run (a folder name under <state dir>/logs, or a run id in the files).", show_default=False),
    since: str = typer.Option(None, "--since", help="Only events from this time on: ISO 8601, HH:MM[:SS] (UTC today), or a duration ago (10m).", show_default=False),
    last: str = typer.Option(None, "--last", help="Only the last DURATION (30s, 5m, 2h) up to now.", show_default=False),
    endpoint: str = typer.Option(None, "--endpoint", help="Only events about this endpoint (and those naming none, such as published plans).", show_default=False),
    html_file: Path = typer.Option(None, "--html", help="Also write a self-contained HTML sequence diagram to this file.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the timeline as JSON instead of a table."),
    show_all: bool = typer.Option(False, "--all", help="Show every event; do not fold repetitive runs."),
) -> None:
    """Merge the logs of one run into one timeline ordered by time; fold noise; mark the cause and its effects."""
    from datetime import UTC, datetime

    from lab.timeline.build import build
    from lab.timeline.events import LogUnreadable
    from lab.timeline.select import SelectionError, parse_duration, parse_since, select, stack_logs
    from services import stack_file

    err = Console(stderr=True)
    if since and last:
        raise typer.BadParameter("give --since or --last, not both", param_hint="--last")
    try:
        start = parse_since(since) if since else (datetime.now(UTC) - parse_duration(last) if last else None)
    except SelectionError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since" if since else "--last") from exc
    paths = list(files or [])
    if stack:
        where = stack_file.state_dir(state_dir)
        described = stack_file.read(where)
        try:
            _, found = stack_logs(where, run, current=described.log_dir if described else None)
        except SelectionError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        if not found:
            err.print(f"[red]no logs in {where / 'logs'}[/red]: start a stack with `dnsctl up`, or give log files.")
            raise typer.Exit(2)
        paths += found
    if not paths:
        err.print("[red]give log files, or --stack[/red] for the logs of the local stack (see `dnsctl timeline --help`).")
        raise typer.Exit(2)
    try:
        chosen = select(paths, run=run, since=start, endpoint=endpoint)
    except LogUnreadable as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    except SelectionError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if len(chosen.runs) > 1:
        err.print(f"these logs hold {len(chosen.runs)} runs ({', '.join(chosen.runs)}); showing run {chosen.run} alone "
                  "(--run ID for another)", highlight=False, soft_wrap=True)
    merged = chosen.merged
    if not merged.events and chosen.dropped:
        err.print(f"[yellow]no events match[/yellow] (--since/--last/--endpoint left out all {chosen.dropped})")
    result = build(merged, fold=not show_all)

    if html_file is not None:
        from lab.timeline.render_html import render as render_html

        if not html_file.parent.is_dir():
            err.print(f"[red]cannot write {html_file}: no directory {html_file.parent}[/red]")
            raise typer.Exit(2)
        try:
            _write(html_file, render_html(result))
        except OSError as exc:
            err.print(f"[red]cannot write {html_file}: {exc.strerror or exc}[/red]")
            raise typer.Exit(2) from exc
        err.print(f"wrote {html_file} ({len(result.rows)} rows, {len(result.lanes)} lanes)")
    if as_json:
        from lab.timeline.render_json import to_json

        sys.stdout.write(json.dumps(to_json(result), indent=1, default=str) + "\n")
        return
    from lab.timeline.render_terminal import render as render_terminal

    console = Console()
    if not console.is_terminal:
        console = Console(width=220)  # piped to a file or less: do not squeeze the table to 80 columns
    render_terminal(result, console)


def register(app: typer.Typer) -> None:
    app.command("timeline")(timeline)
