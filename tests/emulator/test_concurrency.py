"""Conformance under contention: the lock record and S3 conditional writes have exactly one winner.

These are the promises the enactor's lock and the plan store rest on; stock moto let all three
contenders for one TXT lock "win" 200 rounds out of 200. The emulator here switches threads every
microsecond, so unlocked check-then-write code would lose these races visibly.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import ClientError

from tests.emulator.conftest import client, new_zone

CONTENDERS = 3
ROUNDS = 200


def test_three_contenders_for_one_txt_lock_have_exactly_one_winner_per_round(racy_emulator, unique):
    """AWS: DELETE-old + CREATE-new in one batch is a compare-and-swap; only one of equal bids wins."""
    r53 = client(racy_emulator, "route53")
    zone_id, name = new_zone(r53, unique, "lock")
    lock = f"_lock.{name}"

    def rr(value: str) -> dict[str, Any]:
        return {"Name": lock, "Type": "TXT", "TTL": 5, "ResourceRecords": [{"Value": f'"{value}"'}]}

    r53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": rr("round-0")}]},
    )
    clients = [client(racy_emulator, "route53") for _ in range(CONTENDERS)]  # one connection pool each
    bids: list[list[str]] = [
        [f"round-{rnd + 1} holder-{me}" for me in range(CONTENDERS)] for rnd in range(ROUNDS)
    ]
    winners: list[list[int]] = [[] for _ in range(ROUNDS)]
    unexpected: list[str] = []
    state = {"round": 0, "current": "round-0"}  # the value every contender observed before the round

    def close_round() -> None:
        rnd = state["round"]
        if len(winners[rnd]) == 1:
            state["current"] = bids[rnd][winners[rnd][0]]
        state["round"] = rnd + 1

    start = threading.Barrier(CONTENDERS)
    done = threading.Barrier(CONTENDERS, action=close_round)

    def contend(me: int) -> None:
        for rnd in range(ROUNDS):
            seen = state["current"]
            start.wait()
            try:
                clients[me].change_resource_record_sets(
                    HostedZoneId=zone_id,
                    ChangeBatch={
                        "Changes": [
                            {"Action": "DELETE", "ResourceRecordSet": rr(seen)},
                            {"Action": "CREATE", "ResourceRecordSet": rr(bids[rnd][me])},
                        ]
                    },
                )
                winners[rnd].append(me)
            except ClientError as err:
                if err.response["Error"]["Code"] != "InvalidChangeBatch":
                    unexpected.append(err.response["Error"]["Code"])
            done.wait()

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(CONTENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not unexpected
    assert [len(w) for w in winners] == [1] * ROUNDS
    final = r53.list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=lock, StartRecordType="TXT", MaxItems="1"
    )
    assert final["ResourceRecordSets"][0]["ResourceRecords"] == [{"Value": f'"{state["current"]}"'}]
    assert state["current"].startswith(f"round-{ROUNDS} ")


def _race(n: int, attempt: Any) -> list[str]:
    """Run `attempt(i)` in n threads released together; return each one's outcome."""
    outcomes = [""] * n
    gate = threading.Barrier(n)

    def run(i: int) -> None:
        gate.wait()
        try:
            attempt(i)
            outcomes[i] = "ok"
        except ClientError as err:
            outcomes[i] = (
                f"{err.response['ResponseMetadata']['HTTPStatusCode']} {err.response['Error']['Code']}"
            )

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def test_s3_if_none_match_has_exactly_one_winner(racy_emulator, unique):
    """AWS S3: PutObject with If-None-Match: * succeeds for one writer; the others get 412 PreconditionFailed."""
    s3 = client(racy_emulator, "s3")
    bucket = f"cond-{unique}"
    s3.create_bucket(Bucket=bucket)
    writers = [client(racy_emulator, "s3") for _ in range(6)]
    for rnd in range(40):
        key = f"plans/{rnd:04}.json"
        outcomes = _race(
            6,
            lambda i, key=key: writers[i].put_object(
                Bucket=bucket, Key=key, Body=f"writer {i}".encode(), IfNoneMatch="*"
            ),
        )
        assert sorted(outcomes) == ["412 PreconditionFailed"] * 5 + ["ok"], outcomes
        winner = outcomes.index("ok")
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == f"writer {winner}".encode()


def test_s3_if_match_has_exactly_one_winner(racy_emulator, unique):
    """AWS S3: PutObject with If-Match: <etag> succeeds for one writer of those holding that etag."""
    s3 = client(racy_emulator, "s3")
    bucket = f"cas-{unique}"
    s3.create_bucket(Bucket=bucket)
    writers = [client(racy_emulator, "s3") for _ in range(6)]
    s3.put_object(Bucket=bucket, Key="latest", Body=b"v0")
    for rnd in range(40):
        etag = s3.head_object(Bucket=bucket, Key="latest")["ETag"]
        outcomes = _race(
            6,
            lambda i, rnd=rnd, etag=etag: writers[i].put_object(
                Bucket=bucket, Key="latest", Body=f"v{rnd + 1} by {i}".encode(), IfMatch=etag
            ),
        )
        assert sorted(outcomes) == ["412 PreconditionFailed"] * 5 + ["ok"], outcomes
