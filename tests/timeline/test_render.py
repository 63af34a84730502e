"""Renderers: the HTML page is self-contained and escapes log text; the terminal shows the cause first."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console

from lab.timeline.build import build
from lab.timeline.events import read_logs
from lab.timeline.render_html import render as render_html
from lab.timeline.render_json import to_json
from lab.timeline.render_terminal import render as render_terminal
from tests.timeline.race_logs import ENDPOINT, race

EXTERNAL = re.compile(r"https?://|<script|<link|@import|<img|<iframe|src=|url\((?!#)", re.IGNORECASE)


def _timeline(tmp_path: Path, **kw):
    writer = race(**kw)
    writer.at(9.0, "planner", "fleet_changed", description="<script>alert(1)</script> see https://evil.example/x.js", lane="fast")
    return build(read_logs(writer.write(tmp_path)))


def test_html_is_self_contained_and_escapes_log_text(tmp_path: Path):
    page = render_html(_timeline(tmp_path))
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "https&#58;//evil.example/x.js" in page  # shown as text, not a reference


def test_html_has_one_lane_per_process_and_marks_the_cause(tmp_path: Path):
    timeline = _timeline(tmp_path)
    page = render_html(timeline)
    heads = re.findall(r"<div style='left:[0-9.]+px;color:#[0-9a-f]{6};transform:translateX\(-50%\)'>([^<]+)</div>", page)
    assert heads == ["planner", "enactor-a", "enactor-b", "enactor-c", "dns", "prober"] == list(timeline.lanes)
    lifelines = re.findall(r"<line x1='([0-9.]+)' y1='0'", page)
    assert len(lifelines) == 6
    assert "id='A1'" in page and "◆ CAUSE A1" in page and "href='#A1'" in page
    assert page.count("marker-end='url(#arrow-anomaly)'") == 3  # A1 -> A2, A3, A4


def test_json_and_terminal_tell_the_same_story(tmp_path: Path):
    timeline = _timeline(tmp_path)
    data = to_json(timeline)
    assert [a["kind"] for a in data["anomalies"]] == ["stale_flip", "active_tree_deleted", "root_dangling", "flip_failed"]
    assert data["anomalies"][0]["cause"] and data["anomalies"][0]["process"] == "enactor-c"
    assert data["anomalies"][0]["effects"] > 0
    console = Console(record=True, width=200)
    render_terminal(timeline, console)
    text = console.export_text()
    assert text.index("CAUSE A1") < text.index("then A2") < text.index("effects of A1")
    assert f"enactor-c flipped {ENDPOINT} to plan 110 over newer plan 145" in text
    assert "×46 lock contention" in text


def test_guarded_run_has_no_anomaly_and_shows_the_guard(tmp_path: Path):
    timeline = _timeline(tmp_path, guarded=True)
    assert timeline.analysis.anomalies == ()
    page = render_html(timeline)
    assert "no anomaly found" in page and "✔ guard" in page and "CAUSE" not in page
