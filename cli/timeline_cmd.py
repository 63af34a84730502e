"""`dnsctl timeline`: merge the JSON logs of planner, enactors, prober and DNS server into one
timeline that points at the anomaly, not at its effects."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console


def stack_logs(state_dir: Path) -> list[Path]:
    """The logs of the running (or last) local stack: <state dir>/logs/*.log, see services/supervisor.py."""
    return sorted((state_dir / "logs").glob("*.log"))


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
    stack: bool = typer.Option(False, "--stack", help="Read the logs of the running or last local stack (<state dir>/logs/*.log)."),
    state_dir: Path = typer.Option(
        None, envvar="DNSCTL_STATE_DIR", help="State directory of `dnsctl up` (default .dnsctl).", show_default=False
    ),
    html_file: Path = typer.Option(None, "--html", help="Also write a self-contained HTML sequence diagram to this file.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the timeline as JSON instead of a table."),
    show_all: bool = typer.Option(False, "--all", help="Show every event; do not fold repetitive runs."),
) -> None:
    """Merge the logs into one timeline ordered by time; fold noise; mark the cause and its effects."""
    from lab.timeline.build import build
    from lab.timeline.events import LogUnreadable, read_logs

    err = Console(stderr=True)
    paths = list(files or [])
    if stack:
        where = (state_dir or Path(".dnsctl")).resolve()
        found = stack_logs(where)
        if not found:
            err.print(f"[red]no logs in {where / 'logs'}[/red]: start a stack with `dnsctl up`, or give log files.")
            raise typer.Exit(2)
        paths += found
    if not paths:
        err.print("[red]give log files, or --stack[/red] for the logs of the local stack (see `dnsctl timeline --help`).")
        raise typer.Exit(2)
    try:
        merged = read_logs(paths)
    except LogUnreadable as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
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
