"""wait_insync: the enactor's wait for its tree batches to be INSYNC before a flip, against the
emulator's propagation delay, plus its timeout and error paths with a scripted client."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from prometheus_client import REGISTRY

from enactor.propagation import change_id, wait_insync
from services import aws_clients
from tests.aws_grade.aws_like import PROPAGATION_DELAY_S


def _waits(outcome: str) -> float:
    return REGISTRY.get_sample_value("dnsctl_enactor_propagation_waits_total", {"outcome": outcome}) or 0.0


def _batch(r53, zone: str, domain: str, labels: list[str]) -> str:
    changes = [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": f"{label}.{domain}", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.7"}]}}
        for label in labels
    ]
    return r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})["ChangeInfo"]["Id"]


def test_waits_until_every_batch_is_insync(aws_like_emulator, unique, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_like_emulator.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", f"prop-{unique}")
    r53 = aws_clients.route53_client()
    # Two zones, one batch each: with the prior-request check, two batches to one zone could not
    # both be in flight. The zones' own creation is a change too: wait for that first.
    zones = {}
    for n in ("a", "b"):
        domain = f"prop-{n}-{unique}.example.com"
        created = r53.create_hosted_zone(Name=domain, CallerReference=f"{n}-{unique}")
        zones[domain] = created["HostedZone"]["Id"]
        assert wait_insync(r53, [created["ChangeInfo"]["Id"]], timeout_s=30, poll_s=0.1).insync
    ids = []
    for domain, zone in zones.items():
        sent = time.monotonic()
        ids.append(_batch(r53, zone, domain, ["t-x", "leaf-x"]))
    before = _waits("insync")

    result = wait_insync(r53, ids, timeout_s=30, poll_s=0.2, endpoint="prop")

    # The emulator reports INSYNC only once the delay has passed since it accepted the last batch
    # (after `sent`), so a wait that returned early would end before that.
    assert time.monotonic() - sent >= PROPAGATION_DELAY_S
    assert result.insync and result.pending == ()
    assert all(r53.get_change(Id=i)["ChangeInfo"]["Status"] == "INSYNC" for i in ids)
    assert _waits("insync") == before + 1


def test_times_out_while_the_batch_is_still_pending(aws_like_emulator, unique, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_like_emulator.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", f"prop-{unique}")
    r53 = aws_clients.route53_client()
    domain = f"slow-{unique}.example.com"
    created = r53.create_hosted_zone(Name=domain, CallerReference=unique)
    zone = created["HostedZone"]["Id"]
    # Let the zone's creation propagate first: a PriorRequestNotComplete on the batch would be a
    # throttle to botocore's adaptive mode, whose slowed-down client could poll only after the delay.
    assert wait_insync(r53, [created["ChangeInfo"]["Id"]], timeout_s=30, poll_s=0.1).insync
    cid = _batch(r53, zone, domain, ["t-slow"])
    before = _waits("timeout")

    result = wait_insync(r53, [cid], timeout_s=PROPAGATION_DELAY_S / 4, poll_s=0.05)

    assert result.outcome == "timeout" and not result.insync
    assert result.pending == (change_id(cid),)
    assert _waits("timeout") == before + 1


def test_an_unknown_change_ends_the_wait(aws_like_emulator, unique, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_like_emulator.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", f"prop-{unique}")
    r53 = aws_clients.route53_client()
    result = wait_insync(r53, ["/change/CNOSUCHCHANGE0"], timeout_s=30, poll_s=0.1)
    assert result.outcome == "unknown_change"
    assert result.pending == ("CNOSUCHCHANGE0",)
    assert result.waited_s < 30


class _ScriptedRoute53:
    """GetChange answers from a script, one entry per call: a status, or an exception to raise."""

    def __init__(self, script):
        self.script = list(script)
        self.calls: list[str] = []

    def get_change(self, Id):  # noqa: N803 - boto3's parameter name
        self.calls.append(Id)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return {"ChangeInfo": {"Id": f"/change/{Id}", "Status": step}}


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.now += s


def test_poll_errors_are_retried_until_the_deadline():
    throttled = ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "GetChange")
    client = _ScriptedRoute53([throttled, EndpointConnectionError(endpoint_url="x"), "PENDING", "INSYNC"])
    clock = _Clock()
    result = wait_insync(client, ["/change/C1"], timeout_s=10, poll_s=1, clock=clock, sleep=clock.sleep)
    assert result.insync and result.polls == 4 and client.calls == ["C1"] * 4
    assert result.waited_s == pytest.approx(3.0)


def test_duplicate_ids_are_polled_once_and_nothing_to_wait_for_is_immediate():
    client = _ScriptedRoute53(["INSYNC"])
    clock = _Clock()
    assert wait_insync(client, ["/change/C9", "C9"], timeout_s=5, poll_s=1, clock=clock, sleep=clock.sleep).insync
    assert client.calls == ["C9"]
    empty = wait_insync(client, [], timeout_s=5, poll_s=1)
    assert empty.insync and empty.polls == 0


@pytest.mark.parametrize(("timeout_s", "poll_s"), [(-1, 1), (5, 0)])
def test_bad_arguments_are_refused(timeout_s, poll_s):
    with pytest.raises(ValueError):
        wait_insync(_ScriptedRoute53([]), ["C1"], timeout_s=timeout_s, poll_s=poll_s)
