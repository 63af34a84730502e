"""Reading and merging logs: the exact format services/logs.py writes, junk skipped and counted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.timeline.events import LogUnreadable, merge, parse_line, parse_lines, read_log, read_logs
from tests.processes import ROOT
from tests.timeline.race_logs import LogWriter

# A real process: services/logs.py configured as an enactor, plus the plain lines a process also prints.
_EMIT = """
import sys
from services.logs import configure, get_logger
configure(process="enactor-a", stream=sys.stdout)
log = get_logger(enactor="enactor-a")
print("INFO:     Started server process [1]", flush=True)
log.info("flipped", endpoint="dynamodb.us-east-1.api.aws", plan_version=145, applied_version=145, tree_id="t-a145", batch_id="b-1")
log.warning("lock_lost", endpoint="dynamodb.us-east-1.api.aws", holder="enactor-b", api_token="s3cr3t")
try:
    raise RuntimeError("boom")
except RuntimeError:
    log.exception("request_failed", endpoint="dynamodb.us-east-1.api.aws")
import threading
worker = threading.Thread(target=lambda: log.info("from_thread", endpoint="dynamodb.us-east-1.api.aws"))
worker.start()
worker.join()
print("Traceback (most recent call last):", flush=True)
print('  File "x.py", line 1', flush=True)
"""


@pytest.fixture(scope="module")
def real_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("real") / "enactor-a.log"
    with open(path, "w") as out:
        subprocess.run([sys.executable, "-c", _EMIT], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=True, timeout=60)
    return path


def test_reads_what_logs_py_writes(real_log: Path):
    log = read_log(real_log)
    assert [e.name for e in log.events] == ["flipped", "lock_lost", "request_failed", "from_thread"]
    assert log.skipped_lines == 3  # the uvicorn line and the two traceback lines
    flipped = log.events[0]
    assert flipped.process == "enactor-a" and flipped.seq == 1 and flipped.level == "info" and flipped.pid
    assert flipped.fields["tree_id"] == "t-a145" and flipped.int_field("plan_version") == 145
    assert flipped.endpoint == "dynamodb.us-east-1.api.aws"
    assert flipped.ts.tzinfo is not None and flipped.ts_text.endswith("Z")
    assert log.events[1].fields["api_token"] == "[redacted]"
    assert "RuntimeError: boom" in log.events[2].fields["exception"]
    assert [e.seq for e in log.events] == [1, 2, 3, 4]
    # events logged from other threads carry the process identity too
    raw = json.loads(real_log.read_text().splitlines()[4])
    assert raw["event"] == "from_thread" and raw["process"] == "enactor-a" and raw["pid"] == flipped.pid
    assert {(e.process, e.pid) for e in log.events} == {("enactor-a", flipped.pid)}
    assert merge([log]).gaps == ()


def test_the_synthetic_writer_matches_logs_py_key_for_key(real_log: Path):
    real = json.loads(real_log.read_text().splitlines()[1])
    w = LogWriter()
    fake = w.at(0.123456, "enactor-a", "flipped", endpoint="dynamodb.us-east-1.api.aws", plan_version=145, applied_version=145, tree_id="t-a145", batch_id="b-1")
    assert list(fake) == list(real)
    assert list(fake)[-6:] == ["event", "level", "ts", "process", "pid", "seq"]
    assert type(fake["ts"]) is type(real["ts"]) and real["ts"].endswith("Z") and fake["ts"].endswith("Z")
    assert len(fake["ts"]) == len(real["ts"])


def test_junk_lines_are_skipped_and_counted():
    lines = [
        '{"event": "x", "ts": "2025-10-20T06:48:00.000001Z", "seq": 1, "process": "p", "level": "info"}',
        "",
        "plain text",
        '{"event": "cut in half", "ts": "2025-10-20T06:4',
        "[1, 2]",
        '{"ts": "2025-10-20T06:48:00Z", "seq": 2}',
        '{"event": "no time", "seq": 3}',
        '{"event": "bad time", "ts": "yesterday"}',
        '{"event": "no fraction", "ts": "2025-10-20T06:48:01Z", "seq": "7", "pid": true}',
    ]
    log = parse_lines(lines, source="p.log", default_process="p")
    assert [e.name for e in log.events] == ["x", "no fraction"]
    assert log.skipped_lines == 6  # the blank line is not counted
    odd = log.events[1]
    assert odd.seq is None and odd.pid is None and odd.process == "p"


def test_process_defaults_to_the_file_name_and_a_generic_enactor_gets_its_own_lane(tmp_path: Path):
    path = tmp_path / "enactor-b.log"
    path.write_text('{"event": "plan_seen", "ts": "2025-10-20T06:48:00Z", "seq": 1}\n')
    assert read_log(path).events[0].lane == "enactor-b"
    event = parse_line('{"event": "x", "ts": "2025-10-20T06:48:00Z", "process": "enactor", "enactor": "enactor-c"}')
    assert event is not None and event.lane == "enactor-c"


def test_merge_orders_by_time_then_process_then_seq():
    w = LogWriter()
    w.at(1.0, "prober", "late")
    w.at(0.5, "planner", "same-time-p")
    w.at(0.5, "enactor-a", "same-time-e1")
    w.at(0.5, "enactor-a", "same-time-e2")
    w.at(0.1, "prober", "early")
    logs = [parse_lines([text for _, text in lines], source=name) for name, lines in w.lines.items()]
    merged = merge(logs)
    assert [e.name for e in merged.events] == ["early", "same-time-e1", "same-time-e2", "same-time-p", "late"]
    assert [e.index for e in merged.events] == [0, 1, 2, 3, 4]


def test_sequence_gaps_are_found_per_process_and_pid():
    def line(seq: int, pid: int) -> str:
        return json.dumps({"event": "e", "ts": f"2025-10-20T06:48:{seq:02d}Z", "seq": seq, "process": "p", "pid": pid})

    log = parse_lines([line(1, 10), line(2, 10), line(5, 10), line(1, 11), line(2, 11)])
    merged = merge([log])
    assert [(g.pid, g.after, g.before, g.missing) for g in merged.gaps] == [(10, 2, 5, 2)]


def test_unreadable_files_are_named(tmp_path: Path):
    with pytest.raises(LogUnreadable, match="no such log file"):
        read_logs([tmp_path / "missing.log"])
    with pytest.raises(LogUnreadable, match="is a directory"):
        read_logs([tmp_path])
