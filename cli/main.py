"""The `dnsctl` command line: one entry point for every part of the system.

Each command group lives in its own module beside this one and registers itself here; this
module only assembles them.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    name="dnsctl",
    help="Keep DNS names pointed at a changing fleet through Route 53, and replay the race of 20 October 2025.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    state_dir: Path = typer.Option(
        None, "--state-dir", envvar="DNSCTL_STATE_DIR", show_default=False,
        help="The local stack's state dir (default .dnsctl): every command finds the stack `dnsctl up` runs from its stack.json.",
    ),
) -> None:
    """dnsctl: planner, enactors, emulator and tools of the DNS management system."""
    # An explicit callback keeps typer in command-group mode even while only one command exists.
    if state_dir is not None:
        from services.stack_file import use_state_dir

        use_state_dir(state_dir)


def _register() -> None:
    # One line per command module; each module defines register(app).
    from cli import (  # noqa: F401 - imported for registration
        chaos_cmd,
        check_cmd,
        console_cmd,
        dns_cmd,
        emulator_cmd,
        enactor_cmd,
        keys_cmd,
        planner_cmd,
        race_cmd,
        repair_cmd,
        soak_cmd,
        status_cmd,
        timeline_cmd,
        up_cmd,
        zones_cmd,
    )

    for module in (chaos_cmd, check_cmd, console_cmd, dns_cmd, emulator_cmd, enactor_cmd, keys_cmd, planner_cmd, race_cmd, repair_cmd, soak_cmd, status_cmd, timeline_cmd, up_cmd, zones_cmd):
        module.register(app)
    from cli import cells_cmd  # issue 16's cell map (a line of its own: merges stay simple)

    cells_cmd.register(app)


_register()


def main() -> None:
    """The `dnsctl` entry point: the app, with "no AWS settings" said in one line instead of a traceback."""
    from services.stack_file import AwsNotConfigured

    try:
        app()
    except AwsNotConfigured as exc:
        from rich.console import Console

        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
