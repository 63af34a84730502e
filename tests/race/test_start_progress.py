"""The race's start-up spinner (cli/race_cmd.py's StartProgress) over the names of a real stack
table with cells (services/stack.py): every cell's and the cell map's services are waited for,
not only the regional ones, and the line stays short however many there are."""

from __future__ import annotations

from dataclasses import replace

from cli.race_cmd import StartProgress
from services.stack import Ports, services


def test_the_spinner_waits_for_every_cell_service_and_stays_one_short_line():
    ports = replace(Ports(), cells=((9100, 9101, 9102, 9103), (9110, 9111, 9112, 9113)))
    names = [s.name for s in services(ports, accounts=6)]
    assert {"cell-2-enactor-c", "cellmap-enactor-a", "resolver"} <= set(names)
    progress = StartProgress()
    assert progress.text() == "starting the stack ..."
    progress.plan(names)
    regional = {"emulator", "planner", "zones", "enactor-a", "enactor-b", "enactor-c", "dns", "prober", "console"}
    for name in regional & set(names):
        progress.started(name)
    text = progress.text()
    assert text.startswith(f"starting {len(names) - len(regional & set(names))} of {len(names)} services: ")
    assert text != "stack up" and "more ..." in text and len(text) <= 160  # the cells are still starting
    for name in names:
        progress.started(name)
    progress.started("not-a-service")  # a name it never planned changes nothing
    assert progress.text() == "stack up"
