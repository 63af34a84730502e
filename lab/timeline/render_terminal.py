"""`dnsctl timeline` in a terminal: the cause first, then one table row per event or folded run."""

from __future__ import annotations

from collections import Counter

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from lab.timeline.anomalies import Mark
from lab.timeline.build import Timeline
from lab.timeline.collapse import CollapsedRow

LANE_STYLES = ("cyan", "magenta", "blue", "green", "yellow", "bright_cyan", "bright_magenta", "bright_blue", "white")


def mark_text(mark: Mark | None) -> Text:
    if mark is None:
        return Text("")
    if mark.role == "cause":
        return Text(f"◆ CAUSE {mark.anomaly}: {mark.describe()}", style="bold white on red")
    if mark.role == "anomaly":
        return Text(f"▲ {mark.anomaly}: {mark.describe()}", style="bold red")
    if mark.role == "effect":
        return Text(f"↳ {mark.describe()}", style="yellow")
    return Text(f"✔ {mark.describe()}", style="green")


def summary(timeline: Timeline) -> Text:
    merged = timeline.merged
    text = Text(f"{len(merged.events)} events from {len(merged.files)} log files, lanes: {', '.join(timeline.lanes) or '-'}")
    if merged.skipped_lines:
        text.append(f"; {merged.skipped_lines} non-JSON lines skipped")
    if merged.gaps:
        text.append(f"; {sum(g.missing for g in merged.gaps)} events missing (gaps in seq)", style="yellow")
    folded = [r for r in timeline.rows if isinstance(r, CollapsedRow)]
    if folded:
        text.append(f"; {sum(r.count for r in folded)} repetitive events folded into {len(folded)} rows")
    return text


def headline(timeline: Timeline) -> Panel:
    """The anomalies, causes first, each with what follows from it and how many effects it has."""
    analysis, events = timeline.analysis, timeline.events
    if not analysis.anomalies:
        return Panel(Text("no anomaly found: no stale flip, no deleted active tree, no dangling root, no failed flip", style="green"), title="verdict")
    lines: list[Text] = []
    for cause in analysis.causes:
        e = events[cause.event_index]
        lines.append(Text(f"CAUSE {cause.id} {e.ts_text} [{e.process}] {cause.title}: {cause.summary}", style="bold red"))
        for follow in (a for a in analysis.anomalies if a.caused_by == cause.id):
            f = events[follow.event_index]
            lines.append(Text(f"  then {follow.id} {f.ts_text} [{f.process}] {follow.title}: {follow.summary}", style="red"))
        effects = Counter(analysis.marks[i].note for i in analysis.effects_of(cause.id))
        if effects:
            listed = ", ".join(f"{what} ×{n}" for what, n in effects.most_common())
            lines.append(Text(f"  effects of {cause.id}: {listed}", style="yellow"))
        for index in analysis.recoveries_of(cause.id):
            r = events[index]
            lines.append(Text(f"  recovered {r.ts_text} [{r.process}] {analysis.marks[index].note}", style="green"))
    return Panel(Group(*lines), title="the anomaly, apart from its effects", border_style="red")


def table(timeline: Timeline) -> Table:
    styles = {lane: LANE_STYLES[i % len(LANE_STYLES)] for i, lane in enumerate(timeline.lanes)}
    out = Table(show_lines=False, pad_edge=False, expand=True)
    out.add_column("time (UTC)", no_wrap=True)
    out.add_column("process", no_wrap=True)
    out.add_column("event", max_width=34, overflow="fold")
    out.add_column("details", ratio=3, overflow="fold")
    out.add_column("marker", ratio=1, min_width=18, overflow="fold")
    for row in timeline.rows:
        first = row.first
        time = first.ts.strftime("%H:%M:%S.%f")[:-3]
        lane = Text(first.lane, style=styles.get(first.lane, ""))
        row_style = "bold" if row.mark and row.mark.role in ("cause", "anomaly") else None
        if isinstance(row, CollapsedRow):
            event = Text(f"×{row.count} {row.label}", style="dim")
            details = Text(row.describe(), style="dim")
        else:
            event = Text(first.name, style="red" if first.level in ("error", "critical") else "")
            details = Text(first.details(limit=200))
        out.add_row(time, lane, event, details, mark_text(row.mark), style=row_style)
    return out


def render(timeline: Timeline, console: Console) -> None:
    console.print(summary(timeline))
    console.print(headline(timeline))
    if timeline.rows:
        first, last = timeline.events[0], timeline.events[-1]
        console.print(Text(f"from {first.ts_text} to {last.ts_text}", style="dim"))
        console.print(table(timeline))
