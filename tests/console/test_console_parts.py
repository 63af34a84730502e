"""The console's pure parts: the hub's fan-out, the log follower, the counterexample parser."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from services.console.hub import Hub
from services.console.log_tail import LogTail
from services.console.trace_view import TraceInvalid, parse_counterexample


def _event(seq: int, name: str = "flipped", **fields) -> str:
    return json.dumps({"event": name, "ts": f"2026-12-01T10:00:{seq:02d}.000000Z", "process": "enactor-a", "seq": seq, **fields})


def test_the_hub_gives_a_new_page_the_newest_state_and_the_recent_events():
    async def scenario():
        hub = Hub()
        hub.bind(asyncio.get_running_loop())
        hub.publish("state", {"v": 1})
        hub.publish("state", {"v": 2})
        hub.publish("events", [{"e": 1}])
        queue = hub.subscribe()
        got = [queue.get_nowait() for _ in range(queue.qsize())]
        hub.publish("state", {"v": 3})
        await asyncio.sleep(0)
        got.append(queue.get_nowait())
        hub.unsubscribe(queue)
        assert hub.clients == 0
        return got

    got = asyncio.run(scenario())
    assert got[0] == ("state", '{"v":2}')
    assert got[1] == ("backlog", '[[{"e":1}]]')
    assert got[2] == ("state", '{"v":3}')


def test_a_page_that_stops_reading_loses_its_oldest_messages_not_the_servers_memory():
    async def scenario():
        hub = Hub()
        hub.bind(asyncio.get_running_loop())
        queue = hub.subscribe()
        for i in range(queue.maxsize + 50):
            hub.publish("events", [i])
        await asyncio.sleep(0)
        return queue

    queue = asyncio.run(scenario())
    assert queue.qsize() == queue.maxsize
    assert queue.get_nowait() == ("events", "[50]")


def test_the_log_follower_waits_for_a_line_to_end_and_rereads_a_truncated_file(tmp_path: Path):
    hub = Hub()  # not bound: publishing only records
    log = tmp_path / "enactor-a.log"
    log.write_text(_event(1, plan_version=3, endpoint="a.example") + "\nnot json\n" + _event(2)[:20])
    tail = LogTail(tmp_path, hub)
    first = tail.poll_once(first=True)
    assert [(e.name, e.seq) for e in first] == [("flipped", 1)]
    with open(log, "a") as fh:
        fh.write(_event(2)[20:] + "\n")
    assert [e.seq for e in tail.poll_once()] == [2]
    assert tail.poll_once() == []
    log.write_text(_event(3, name="backoff") + "\n")  # shorter than before: truncated
    assert [(e.name, e.seq) for e in tail.poll_once()] == [("backoff", 3)]
    timeline = tail.timeline()
    assert timeline["events"] == 3 and timeline["lanes"] == ["enactor-a"]


@pytest.mark.parametrize(
    "doc, says",
    [
        ([], "not a counterexample"),
        ({"format": "dnsctl-check/0"}, "not a counterexample"),
        ({"format": "dnsctl-check/1"}, "malformed"),
        ({"format": "dnsctl-check/1", "bounds": {"enactors": 99}, "steps": []}, "malformed"),
        ({"format": "dnsctl-check/1", "bounds": {}, "steps": [{"label": ["step", 0, ""]}] * 3000}, "more than"),
        ({"format": "dnsctl-check/1", "bounds": {"start": "legacy"}, "steps": [{"label": ["start", 0]}]}, "does not re-explore legacy mode"),
    ],
)
def test_a_file_that_is_not_a_counterexample_gets_a_clear_error(doc, says):
    with pytest.raises(TraceInvalid, match=says):
        parse_counterexample(doc)
