"""`dnsctl timeline --html FILE`: a self-contained sequence diagram of the merged timeline.

One lane per process, time going down, one row per event or folded run, arrows where an event
in one process is tied to an event in another (links.py), the cause in red and its effects in
orange. Everything is inline (CSS, SVG, no script, no font or image files), so the page opens
from a disk or an attachment with no network: a page an operator can read during an outage.
Every row carries the full event as a tooltip. Log text is escaped, and URL schemes inside it
are written with an entity for the colon, so the file holds no literal reference a browser
could fetch.
"""

from __future__ import annotations

import html
import json
from collections import Counter

from lab.timeline.anomalies import ALARM_CLEARED, ALARM_FIRED, Mark, alarm_name
from lab.timeline.build import Timeline
from lab.timeline.collapse import CollapsedRow, Row

ROW_H = 24
GAP_H = 18
TIME_W = 150  # wall time and time since the first event
BADGE_W = 96  # CAUSE / effect markers
TEXT_MARGIN = 330  # room right of the last lane for its labels
PAGE_W = 1360  # lanes shrink (to a minimum) so a diagram fits a laptop screen
TOP = 8
GAP_S = 2.0  # a quiet stretch longer than this gets a visible break
CHAR_W = 6.7  # width of one character of the 11 px monospace font

LANE_COLOURS = ("#1f77b4", "#9467bd", "#2ca02c", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#ff7f0e")
MARK_COLOURS = {"cause": "#d62728", "anomaly": "#d62728", "effect": "#e67e22", "guard": "#2e9d43", "recovered": "#2e9d43"}
LINK_STYLES = {
    "plan": ("#6b7fa8", "1.2", "", "arrow-plan"),
    "observe": ("#1a9c9c", "1.2", "", "arrow-observe"),
    "anomaly": ("#d62728", "2.4", "", "arrow-anomaly"),
    "effect": ("#e67e22", "1.4", "5 3", "arrow-effect"),
}

CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 0; color: #222; background: #fff; }
header { padding: 14px 20px 6px 20px; }
h1 { font-size: 19px; margin: 0 0 6px 0; }
.summary { color: #555; font-size: 13px; margin-bottom: 8px; }
.verdict { border: 2px solid #d62728; background: #fff3f2; border-radius: 6px; padding: 8px 12px; margin: 6px 0 10px 0; max-width: 1200px; }
.verdict.ok { border-color: #2e9d43; background: #f1fbf3; }
.verdict .cause { color: #b0191a; font-weight: 700; font-size: 14px; }
.verdict .follow { color: #b0191a; margin-left: 18px; font-size: 13px; }
.verdict a { color: inherit; }
.verdict .recovered { color: #23803a; margin-left: 18px; font-size: 13px; }
.verdict .effects { color: #b35c00; margin-left: 18px; font-size: 13px; }
.legend { font-size: 12px; color: #444; margin: 4px 0; }
.legend span { margin-right: 16px; white-space: nowrap; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 4px; vertical-align: -1px; }
.line { display: inline-block; width: 22px; height: 0; border-top: 2px solid; margin-right: 4px; vertical-align: 3px; }
.diagram { position: relative; padding: 0 0 30px 20px; }
.lanes { position: sticky; top: 0; height: 30px; background: rgba(255,255,255,0.96); border-bottom: 1px solid #ccc; z-index: 2; }
.lanes div { position: absolute; top: 6px; font-weight: 700; font-size: 13px; white-space: nowrap; }
svg { display: block; }
svg g[id] { scroll-margin-top: 120px; }
svg text { font-family: 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 11px; }
svg .time { fill: #666; }
svg .rel { fill: #999; }
svg .gap { fill: #999; font-style: italic; }
svg .label, svg .rest, svg .folded { paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
svg .label { fill: #111; font-weight: 700; }
svg .rest { fill: #555; }
svg .folded { fill: #444; font-style: italic; stroke: none; }
svg .badge { font-weight: 700; }
svg .cause { fill: #b0191a; }
svg .anomaly { fill: #c0392b; }
svg .effect { fill: #b35c00; }
svg .guard, svg .recovered { fill: #23803a; }
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True).replace("://", "&#58;//")


def _clip(text: str, width_px: float) -> str:
    n = max(4, int(width_px / CHAR_W))
    return text if len(text) <= n else text[: n - 1] + "…"


def _label(row: Row) -> tuple[str, str]:
    """(short label beside the dot, the rest of the story after it)."""
    if isinstance(row, CollapsedRow):
        span = f"{row.first.ts.strftime('%H:%M:%S.%f')[:-3]} → {row.last.ts.strftime('%H:%M:%S.%f')[:-3]}"
        kinds = ", ".join(f"{name} ×{n}" for name, n in row.counts.items()) if len(row.counts) > 1 and row.period == 1 else ""
        kinds = row.cycle if row.period > 1 else kinds
        versions = row.versions
        plans = f"plan {versions[0]}" if len(versions) == 1 else (f"plans {versions[0]}..{versions[-1]}" if versions else "")
        return f"×{row.count} {row.name}", " · ".join(x for x in (row.salient, plans, span, kinds, row.endpoint or "") if x)
    e = row.event
    version = None
    if e.name in ALARM_FIRED | ALARM_CLEARED and (alarm := alarm_name(e)):
        head = f"{'alarm' if e.name in ALARM_FIRED else 'cleared'} {alarm}"
    else:
        version = e.int_field("plan_version")
        head = e.name + (f" v{version}" if version is not None else "")
    return head, e.details(limit=400, omit=("plan_version",) if version is not None else ())


def _badge(mark: Mark | None) -> tuple[str, str]:
    """(text, role) of the marker column."""
    if mark is None:
        return "", ""
    if mark.role == "cause":
        return f"◆ CAUSE {mark.anomaly}", "cause"
    if mark.role == "anomaly":
        return f"▲ {mark.anomaly} ← {mark.follows}", "anomaly"
    if mark.role == "effect":
        return f"↳ effect {mark.anomaly or '?'}", "effect"
    return ("✔ guard" if mark.role == "guard" else "✔ cleared"), mark.role


def _tooltip(row: Row) -> str:
    if isinstance(row, CollapsedRow):
        lines = [row.describe()] + [f"{e.ts_text} {e.name} {e.details(200)}" for e in row.events[:30]]
        if row.count > 30:
            lines.append(f"… and {row.count - 30} more")
        return "\n".join(lines)
    return json.dumps(row.event.as_dict(), indent=1, default=str)


def _header(timeline: Timeline) -> str:
    merged, analysis, events = timeline.merged, timeline.analysis, timeline.events
    parts = [f"{len(merged.events)} events from {len(merged.files)} log files"]
    if merged.skipped_lines:
        parts.append(f"{merged.skipped_lines} non-JSON lines skipped")
    if merged.gaps:
        parts.append(f"{sum(g.missing for g in merged.gaps)} events missing (gaps in seq)")
    folded = [r for r in timeline.rows if isinstance(r, CollapsedRow)]
    if folded:
        parts.append(f"{sum(r.count for r in folded)} repetitive events folded into {len(folded)} rows")
    if events:
        parts.append(f"from {events[0].ts_text} to {events[-1].ts_text}")
    out = ["<header>", "<h1>dnsctl timeline</h1>", f"<div class='summary'>{_esc('; '.join(parts))}</div>"]
    if analysis.anomalies:
        out.append("<div class='verdict'>")
        for cause in analysis.causes:
            e = events[cause.event_index]
            out.append(f"<div class='cause'><a href='#{_esc(cause.id)}'>◆ CAUSE {_esc(cause.id)}</a> · {_esc(e.ts_text)} · {_esc(e.process)} · {_esc(cause.title)}: {_esc(cause.summary)}</div>")
            for follow in (a for a in analysis.anomalies if a.caused_by == cause.id):
                f = events[follow.event_index]
                out.append(f"<div class='follow'>▲ then <a href='#{_esc(follow.id)}'>{_esc(follow.id)}</a> · {_esc(f.ts_text)} · {_esc(f.process)} · {_esc(follow.title)}: {_esc(follow.summary)}</div>")
            effects = Counter(analysis.marks[i].note for i in analysis.effects_of(cause.id))
            if effects:
                listed = ", ".join(f"{what} ×{n}" for what, n in effects.most_common())
                out.append(f"<div class='effects'>↳ effects of {_esc(cause.id)}: {_esc(listed)}</div>")
            for index in analysis.recoveries_of(cause.id):
                r = events[index]
                out.append(f"<div class='recovered'>✔ recovered · {_esc(r.ts_text)} · {_esc(r.process)} · {_esc(analysis.marks[index].note)}</div>")
        out.append("</div>")
    else:
        out.append("<div class='verdict ok'>no anomaly found: no stale flip, no deleted active tree, no dangling root, no failed flip</div>")
    legend = [
        f"<span><i class='swatch' style='background:{MARK_COLOURS['cause']}'></i>cause / anomaly</span>",
        f"<span><i class='swatch' style='background:{MARK_COLOURS['effect']}'></i>effect of a cause</span>",
        f"<span><i class='swatch' style='background:{MARK_COLOURS['guard']}'></i>guard held / recovered</span>",
    ]
    legend += [f"<span><i class='line' style='border-color:{c}'></i>{_esc(kind)}</span>" for kind, (c, *_rest) in LINK_STYLES.items()]
    legend.append("<span>hover a row for the full event</span>")
    out.append(f"<div class='legend'>{''.join(legend)}</div>")
    out.append("</header>")
    return "\n".join(out)


def render(timeline: Timeline) -> str:
    lanes = timeline.lanes
    # Each row holds one event in one lane, so a label may run across the lanes to its right.
    lane_w = max(120, min(190, int((PAGE_W - TIME_W - BADGE_W - TEXT_MARGIN) / max(1, len(lanes)))))
    lanes_x = TIME_W + BADGE_W
    lane_x = {lane: lanes_x + i * lane_w for i, lane in enumerate(lanes)}
    life_x = {lane: x + 22 for lane, x in lane_x.items()}
    colour = {lane: LANE_COLOURS[i % len(LANE_COLOURS)] for i, lane in enumerate(lanes)}
    width = lanes_x + len(lanes) * lane_w + TEXT_MARGIN

    # Row positions, with a break wherever the logs go quiet for a while.
    ys: list[float] = []
    breaks: list[tuple[float, float]] = []
    y = float(TOP)
    previous = None
    for row in timeline.rows:
        if previous is not None and (row.first.ts - previous).total_seconds() > GAP_S:
            breaks.append((y, (row.first.ts - previous).total_seconds()))
            y += GAP_H
        ys.append(y + ROW_H / 2)
        y += ROW_H
        last = row.last.ts if isinstance(row, CollapsedRow) else row.first.ts
        previous = last if previous is None or last > previous else previous
    height = y + 10
    start = timeline.events[0].ts if timeline.events else None

    svg: list[str] = [
        f"<svg width='{width:.0f}' height='{height:.0f}' viewBox='0 0 {width:.0f} {height:.0f}' role='img' aria-label='sequence diagram'>",
        "<defs>",
    ]
    for _kind, (c, _w, _dash, marker_id) in LINK_STYLES.items():
        svg.append(
            f"<marker id='{marker_id}' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' orient='auto-start-reverse'>"
            f"<path d='M0,0 L10,5 L0,10 z' fill='{c}'/></marker>"
        )
    svg.append("</defs>")
    # Stripes and the anomalies' bands first, so everything else draws on top.
    for i, (row, cy) in enumerate(zip(timeline.rows, ys, strict=True)):
        fill = None
        if row.mark and row.mark.role in ("cause", "anomaly"):
            fill = "#ffd9d6" if row.mark.role == "cause" else "#ffeeec"
        elif i % 2:
            fill = "#f5f6f8"
        if fill:
            svg.append(f"<rect x='0' y='{cy - ROW_H / 2:.1f}' width='{width:.0f}' height='{ROW_H}' fill='{fill}'/>")
    for lane in lanes:
        svg.append(
            f"<line x1='{life_x[lane]}' y1='0' x2='{life_x[lane]}' y2='{height:.0f}' stroke='{colour[lane]}' stroke-opacity='0.4' stroke-width='2' stroke-dasharray='4 4'/>"
        )
    for by, seconds in breaks:
        svg.append(f"<line x1='0' y1='{by + GAP_H / 2:.1f}' x2='{width:.0f}' y2='{by + GAP_H / 2:.1f}' stroke='#aaa' stroke-dasharray='2 5'/>")
        svg.append(f"<text class='gap' x='8' y='{by + GAP_H / 2 + 4:.1f}'>… {seconds:.1f} s later …</text>")

    row_of = timeline.row_of()
    drawn: set[tuple[int, int, str]] = set()
    for link in timeline.links:
        src_e, dst_e = timeline.events[link.src], timeline.events[link.dst]
        r1, r2 = row_of.get(link.src), row_of.get(link.dst)
        # An arrow starts at an event the reader sees (not one folded deep inside a run that
        # began earlier) and, time going down, ends below it; one arrow per pair of rows.
        if r1 is None or r2 is None or r2 <= r1 or timeline.rows[r1].first.index != link.src or (r1, r2, link.kind) in drawn:
            continue
        drawn.add((r1, r2, link.kind))
        c, w, dash, marker_id = LINK_STYLES[link.kind]
        x1, y1, x2, y2 = life_x[src_e.lane], ys[r1], life_x[dst_e.lane], ys[r2]
        dash_attr = f" stroke-dasharray='{dash}'" if dash else ""
        if src_e.lane == dst_e.lane:
            bulge = x1 - 14 - min(40.0, (y2 - y1) / 10)
            d = f"M{x1 - 6},{y1:.1f} C{bulge:.1f},{y1:.1f} {bulge:.1f},{y2:.1f} {x2 - 7},{y2:.1f}"
        else:
            shorten = 7 if x2 > x1 else -7
            d = f"M{x1},{y1:.1f} L{x2 - shorten},{y2:.1f}"
        svg.append(f"<path d='{d}' fill='none' stroke='{c}' stroke-width='{w}'{dash_attr} marker-end='url(#{marker_id})' opacity='0.8'/>")

    for row, cy in zip(timeline.rows, ys, strict=True):
        lane, mark = row.lane, row.mark
        role = mark.role if mark else ""
        x = life_x[lane]
        head, rest = _label(row)
        badge, badge_role = _badge(mark)
        first = row.first
        rel = f"+{(first.ts - start).total_seconds():.3f}s" if start else ""
        room = width - (x + 14) - 6
        anchor = f" id='{mark.anomaly}'" if mark and mark.role in ("cause", "anomaly") else ""
        svg.append(f"<g{anchor}>")
        svg.append(f"<title>{_esc(_tooltip(row))}</title>")
        svg.append(f"<text class='time' x='6' y='{cy + 4:.1f}'>{_esc(first.ts.strftime('%H:%M:%S.%f')[:-3])}</text>")
        svg.append(f"<text class='rel' x='{TIME_W - 6}' y='{cy + 4:.1f}' text-anchor='end'>{_esc(rel)}</text>")
        if badge:
            svg.append(f"<text class='badge {badge_role}' x='{TIME_W + 4}' y='{cy + 4:.1f}'>{_esc(badge)}</text>")
        dot = MARK_COLOURS.get(role, colour[lane])
        if isinstance(row, CollapsedRow):
            pill_w = 22 + len(head) * CHAR_W
            svg.append(f"<rect x='{x - 9}' y='{cy - 8:.1f}' width='{pill_w:.0f}' height='16' rx='8' fill='#e9ecf1' stroke='{dot}'/>")
            svg.append(f"<text class='folded' x='{x + 2}' y='{cy + 4:.1f}'>{_esc(head)}</text>")
            svg.append(f"<text class='rest' x='{x + pill_w - 2:.0f}' y='{cy + 4:.1f}'>{_esc(_clip(rest, room - pill_w))}</text>")
        else:
            if role == "cause":
                svg.append(f"<circle cx='{x}' cy='{cy:.1f}' r='10' fill='none' stroke='{dot}' stroke-width='2'/>")
            radius = 6 if role in ("cause", "anomaly") else 4.5
            svg.append(f"<circle cx='{x}' cy='{cy:.1f}' r='{radius}' fill='{dot}'/>")
            head_w = len(head) * CHAR_W
            svg.append(f"<text class='label {role}' x='{x + 13}' y='{cy + 4:.1f}'>{_esc(head)}</text>")
            svg.append(f"<text class='rest {role}' x='{x + 13 + head_w + 8:.0f}' y='{cy + 4:.1f}'>{_esc(_clip(rest, room - head_w - 8))}</text>")
        svg.append("</g>")
    svg.append("</svg>")

    lane_heads = "".join(
        f"<div style='left:{life_x[lane]}px;color:{colour[lane]};transform:translateX(-50%)'>{_esc(lane)}</div>" for lane in lanes
    )
    lane_heads += "<div style='left:6px;color:#666'>time (UTC)</div>"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            "<html lang='en'><head><meta charset='utf-8'>",
            "<title>dnsctl timeline</title>",
            f"<style>{CSS}</style>",
            "</head><body>",
            _header(timeline),
            f"<div class='diagram' style='width:{width:.0f}px'>",
            f"<div class='lanes'>{lane_heads}</div>",
            *svg,
            "</div>",
            "</body></html>",
        ]
    )
