"""The `dnsctl` command line: one entry point for every part of the system.

Each command group lives in its own module beside this one and registers itself here; this
module only assembles them.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="dnsctl",
    help="Keep DNS names pointed at a changing fleet through Route 53, and replay the race of 20 October 2025.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """dnsctl: planner, enactors, emulator and tools of the DNS management system."""
    # An explicit callback keeps typer in command-group mode even while only one command exists.


def _register() -> None:
    # One line per command module; each module defines register(app).
    from cli import (  # noqa: F401 - imported for registration
        chaos_cmd,
        check_cmd,
        console_cmd,
        dns_cmd,
        emulator_cmd,
        enactor_cmd,
        planner_cmd,
        race_cmd,
        repair_cmd,
        timeline_cmd,
        up_cmd,
        zones_cmd,
    )

    for module in (chaos_cmd, check_cmd, console_cmd, dns_cmd, emulator_cmd, enactor_cmd, planner_cmd, race_cmd, repair_cmd, timeline_cmd, up_cmd, zones_cmd):
        module.register(app)


_register()

if __name__ == "__main__":
    app()
