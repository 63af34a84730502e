"""The supervisor's restart backoff on a real child that keeps dying, and size-rotated logs."""

from __future__ import annotations

import json
import time
from pathlib import Path

from services.logs import RotatingStream
from services.stack import ServiceSpec
from services.supervisor import RestartPolicy, Supervisor


def test_backoff_doubles_and_is_capped():
    policy = RestartPolicy(initial_s=1.0, max_s=8.0)
    assert [policy.delay(n) for n in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_crashing_service_is_restarted_and_counted(tmp_path: Path):
    sup = Supervisor(host="127.0.0.1", state_dir=tmp_path, base_env={}, restart_policy=RestartPolicy(0.2, 1.0, 60))
    # A "service" that exits at once: `dnsctl` with an unknown option fails with code 2.
    spec = ServiceSpec("crasher", ("emulator", "--no-such-option"), 0, None)
    process, log_path = sup._spawn(spec)
    from services.supervisor import Child

    child = Child(spec, process, log_path)
    sup.children.append(child)
    restarted_at = []
    deadline = time.monotonic() + 40
    while len(restarted_at) < 3 and time.monotonic() < deadline:
        if sup.restart_crashed():
            restarted_at.append(time.monotonic())
        time.sleep(0.05)
    try:
        assert child.restarts == 3 and child.last_exit == 2
        stack = json.loads((tmp_path / "stack.json").read_text())
        assert stack["services"]["crasher"]["restarts"] == 3
        assert "No such option" in child.out_path.read_text()
    finally:
        sup.stop_all()


def test_rotating_stream_rolls_over_by_size(tmp_path: Path):
    path = tmp_path / "svc.log"
    stream = RotatingStream(str(path), max_bytes=1000, backups=2)
    for i in range(100):
        stream.write(json.dumps({"event": "tick", "n": i}) + "\n")
    stream.flush()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["svc.log", "svc.log.1", "svc.log.2"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
    last = [json.loads(line) for line in path.read_text().splitlines()]
    assert last[-1]["n"] == 99  # the newest events are in the live file, whole lines only


def test_stop_all_stops_every_child_when_reporting_a_stop_fails(tmp_path: Path):
    """`make demo | tee log`, Ctrl-C: tee is gone, so printing "stopped emulator" raises (rich
    turns the broken pipe into SystemExit). The children after it must be stopped all the same."""
    import subprocess

    import pytest

    from services.supervisor import Child

    sup = Supervisor(host="127.0.0.1", state_dir=tmp_path, base_env={})
    for name in ("one", "two", "three"):
        process = subprocess.Popen(["sleep", "120"], start_new_session=True)  # its own group, as _spawn does
        sup.children.append(Child(ServiceSpec(name, ("sleep",), 0, None), process, tmp_path / f"{name}.log"))
    processes = [c.process for c in sup.children]
    reported = []

    def on_stop(name: str) -> None:
        reported.append(name)
        raise SystemExit(1)

    try:
        with pytest.raises(SystemExit):
            sup.stop_all(timeout_s=5, on_stop=on_stop)
        assert [p.poll() for p in processes] == [-15, -15, -15]
        assert reported == ["three"]  # the first report failed; the stops went on without reports
    finally:
        for p in processes:
            p.kill()
            p.wait()
