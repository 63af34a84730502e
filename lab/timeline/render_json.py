"""`dnsctl timeline --json`: the timeline as one JSON document, for scripts and tests."""

from __future__ import annotations

from typing import Any

from lab.timeline.anomalies import Mark
from lab.timeline.build import Timeline
from lab.timeline.collapse import CollapsedRow


def _mark(mark: Mark | None) -> dict[str, Any] | None:
    if mark is None:
        return None
    return {"role": mark.role, "anomaly": mark.anomaly, "follows": mark.follows, "note": mark.describe()}


def to_json(timeline: Timeline) -> dict[str, Any]:
    analysis = timeline.analysis
    rows: list[dict[str, Any]] = []
    for row in timeline.rows:
        if isinstance(row, CollapsedRow):
            rows.append(
                {
                    "kind": "collapsed",
                    "lane": row.lane,
                    "endpoint": row.endpoint,
                    "label": row.label,
                    "count": row.count,
                    "counts": row.counts,
                    "plan_versions": row.versions,
                    "first_ts": row.first.ts_text,
                    "last_ts": row.last.ts_text,
                    "indices": [e.index for e in row.events],
                    "text": row.describe(),
                    "mark": _mark(row.mark),
                }
            )
        else:
            rows.append({"kind": "event", "index": row.event.index, **row.event.as_dict(), "mark": _mark(row.mark)})
    return {
        "files": [{"path": f.path, "events": len(f.events), "skipped_lines": f.skipped_lines} for f in timeline.merged.files],
        "events": len(timeline.events),
        "skipped_lines": timeline.merged.skipped_lines,
        "seq_gaps": [{"process": g.process, "pid": g.pid, "after": g.after, "before": g.before, "missing": g.missing} for g in timeline.merged.gaps],
        "lanes": list(timeline.lanes),
        "anomalies": [
            {
                "id": a.id,
                "kind": a.kind,
                "title": a.title,
                "cause": a.is_cause,
                "caused_by": a.caused_by,
                "endpoint": a.endpoint,
                "summary": a.summary,
                "index": a.event_index,
                "ts": timeline.events[a.event_index].ts_text,
                "process": timeline.events[a.event_index].process,
                "effects": len(analysis.effects_of(a.id)),
            }
            for a in analysis.anomalies
        ],
        "links": [{"src": link.src, "dst": link.dst, "kind": link.kind} for link in timeline.links],
        "rows": rows,
    }
