"""The crash-safe emulator (services/emulator/journal.py): kill -9 at any moment loses no
acknowledged change. A real emulator process with --data-dir, writers in threads through boto3,
kill -9 while they write, a restart on the same port: every acknowledged record and object is there.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from services.emulator.journal import JOURNAL_NAME, Entry
from tests.conftest import start_emulator
from tests.emulator.conftest import client, new_zone

NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)


def a_record(name: str, ip: str) -> dict[str, Any]:
    return {"Name": name, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": ip}]}


def test_kill_9_while_writing_loses_no_acknowledged_change(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("journal")
    first = start_emulator(tmp_path_factory, "--data-dir", str(data_dir))
    unique = uuid.uuid4().hex[:8]
    r53, s3 = client(first, "route53", NO_RETRY), client(first, "s3", NO_RETRY)
    zones = [new_zone(r53, f"{unique}{i}", "crash") for i in range(3)]
    bucket = f"crash-{unique}"
    s3.create_bucket(Bucket=bucket)
    acked_records: list[tuple[str, str, str]] = []  # (zone id, name, ip)
    acked_objects: dict[str, bytes] = {}
    changes: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def route53_writer(zone_id: str, zone_name: str) -> None:
        r = client(first, "route53", NO_RETRY)
        n = 0
        while not stop.is_set():
            n += 1
            name, ip = f"r{n}.{zone_name}", f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
            try:
                info = r.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={
                    "Changes": [{"Action": "CREATE", "ResourceRecordSet": a_record(name, ip)}]})
            except (ClientError, BotoCoreError):
                return  # the emulator died under us: this one was never acknowledged
            if "ChangeInfo" not in info:
                return  # a reply cut off by the kill after its status line (an empty body parses as {}): not counted
            with lock:
                acked_records.append((zone_id, name, ip))
                changes.append(info["ChangeInfo"]["Id"])

    def s3_writer(worker: int) -> None:
        c = client(first, "s3", NO_RETRY)
        n = 0
        while not stop.is_set():
            n += 1
            key, body = f"w{worker}/obj-{n:05d}", f"worker {worker} object {n}".encode()
            try:
                c.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
            except (ClientError, BotoCoreError):
                return
            with lock:
                acked_objects[key] = body

    threads = [threading.Thread(target=route53_writer, args=z) for z in zones]
    threads += [threading.Thread(target=s3_writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if len(acked_records) >= 40 and len(acked_objects) >= 40:
                    break
            time.sleep(0.1)
        time.sleep(random.random())  # a random moment, with requests in flight on six threads
        with lock:
            assert len(acked_records) >= 40 and len(acked_objects) >= 40, (len(acked_records), len(acked_objects))
        first.process.kill9()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)

    second = start_emulator(tmp_path_factory, "--data-dir", str(data_dir), port=first.port)
    try:
        r53, s3 = client(second, "route53"), client(second, "s3")
        for zone_id, zone_name in zones:
            present = {}
            paginator = r53.get_paginator("list_resource_record_sets")
            for page in paginator.paginate(HostedZoneId=zone_id):
                for rr in page["ResourceRecordSets"]:
                    if rr["Type"] == "A":
                        present[rr["Name"]] = rr["ResourceRecords"][0]["Value"]
            expected = {name: ip for z, name, ip in acked_records if z == zone_id}
            missing = {n for n in expected if present.get(n) != expected[n]}
            assert not missing, f"{len(missing)} acknowledged records of {zone_name} lost: {sorted(missing)[:5]}"
        keys = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys |= {o["Key"] for o in page.get("Contents", [])}
        lost = set(acked_objects) - keys
        assert not lost, f"{len(lost)} acknowledged objects lost: {sorted(lost)[:5]}"
        for key in random.sample(sorted(acked_objects), 20):
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == acked_objects[key]
        # Change ids survive too (an enactor waiting for INSYNC across the restart finds its change).
        for change_id in random.sample(changes, 10):
            assert r53.get_change(Id=change_id)["ChangeInfo"]["Status"] == "INSYNC"
        # And the zones still obey the rules after the replay: a CREATE over an existing record fails.
        zone_id, name, ip = acked_records[0]
        with pytest.raises(ClientError) as err:
            r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={
                "Changes": [{"Action": "CREATE", "ResourceRecordSet": a_record(name, ip)}]})
        assert err.value.response["Error"]["Code"] == "InvalidChangeBatch"
        assert "emulator_journal_replayed" in second.process.output()
    finally:
        second.process.stop()

    # A clean stop folds the journal into the state file; the next start needs no replay.
    assert (data_dir / JOURNAL_NAME).stat().st_size == 0
    third = start_emulator(tmp_path_factory, "--data-dir", str(data_dir))
    try:
        zone_id, name, ip = acked_records[-1]
        names = [r["Name"] for r in client(third, "route53").list_resource_record_sets(
            HostedZoneId=zone_id, StartRecordName=name, StartRecordType="A", MaxItems="1")["ResourceRecordSets"]]
        assert names == [name]
    finally:
        third.process.stop()


def test_torn_tail_is_ignored_and_a_corrupt_line_stops_replay_with_a_log(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("torn")
    emu = start_emulator(tmp_path_factory, "--data-dir", str(data_dir))
    unique = uuid.uuid4().hex[:8]
    try:
        s3 = client(emu, "s3")
        s3.create_bucket(Bucket=f"torn-{unique}")
        for i in range(3):
            s3.put_object(Bucket=f"torn-{unique}", Key=f"k{i}", Body=b"x")
    finally:
        emu.process.kill9()
    journal = data_dir / JOURNAL_NAME
    lines = journal.read_bytes().splitlines(keepends=True)
    assert len(lines) == 4 and Entry.from_line(lines[1].rstrip()).method == "PUT"
    # A crash mid-append leaves half a line: it was never fsync'ed, so never acknowledged.
    journal.write_bytes(b"".join(lines) + lines[3][: len(lines[3]) // 2])
    emu = start_emulator(tmp_path_factory, "--data-dir", str(data_dir))
    try:
        keys = [o["Key"] for o in client(emu, "s3").list_objects_v2(Bucket=f"torn-{unique}")["Contents"]]
        assert keys == ["k0", "k1", "k2"]
        assert "emulator_journal_torn_tail" in emu.process.output()
    finally:
        emu.process.kill9()


def test_reset_needs_the_token_and_survives_a_restart(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("reset")
    env = {"DNSCTL_API_TOKEN": "journal-token"}
    emu = start_emulator(tmp_path_factory, "--data-dir", str(data_dir), env=env)
    unique = uuid.uuid4().hex[:8]
    try:
        r53 = client(emu, "route53")
        new_zone(r53, unique, "gone")
        assert httpx.post(f"{emu.url}/moto-api/reset").status_code == 401
        assert httpx.post(f"{emu.url}/moto-api/reset", headers={"Authorization": "Bearer journal-token"}).status_code == 200
    finally:
        emu.process.kill9()
    emu = start_emulator(tmp_path_factory, "--data-dir", str(data_dir), env=env)
    try:
        assert client(emu, "route53").list_hosted_zones_by_name()["HostedZones"] == []
    finally:
        emu.process.stop()
