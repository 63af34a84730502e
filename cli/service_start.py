"""What every service command (`dnsctl planner`, `dnsctl enactor`, `dnsctl console`) checks before
it serves: its settings object built from the flags, and its port free.

Both failures end the command before anything starts, with one red line: bad settings exit 2
(the user's input is wrong), a port in use exits 1 and names the process holding it.
"""

from __future__ import annotations

from typing import Any, TypeVar

import typer

from cli.client import err_console

S = TypeVar("S")


def settings_from_flags(settings_class: type[S], what: str, overrides: dict[str, Any]) -> S:
    """`settings_class` from the environment, with every flag that was given (not None) on top.

    A ValidationError becomes "bad <what> settings: field: message; ..." and exit status 2."""
    from pydantic import ValidationError

    try:
        return settings_class(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        err_console.print(f"[red]error:[/red] bad {what} settings: {errs}", highlight=False)
        raise typer.Exit(2) from exc


def require_port(host: str, port: int) -> None:
    """Exit 1 with who holds it when `host:port` cannot be bound (services/supervisor.py's check)."""
    from services.supervisor import port_free, port_holder

    if port_free(host, port):
        return
    holder = port_holder(port)
    err_console.print(
        f"[red]error:[/red] port {port} on {host} is in use"
        + (f" by {holder}" if holder else "")
        + "; stop what holds it or pass --port",
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(1)
