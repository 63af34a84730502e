"""A reply cut short after its headers (what a kill -9 of the emulator mid-reply sends) fails the
call instead of parsing as "no hosted zones": the soak's NoErrorAnswer failure, at its root."""

from __future__ import annotations

import socket
import threading

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from services import aws_clients

LISTING = (b'<?xml version="1.0" encoding="UTF-8"?><ListHostedZonesResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
           b"<HostedZones><HostedZone><Id>/hostedzone/Z1</Id><Name>example.test.</Name><CallerReference>r</CallerReference>"
           b"<Config><PrivateZone>false</PrivateZone></Config><ResourceRecordSetCount>2</ResourceRecordSetCount></HostedZone>"
           b"</HostedZones><IsTruncated>false</IsTruncated><MaxItems>100</MaxItems></ListHostedZonesResponse>")


@pytest.fixture
def server():
    """An HTTP server on a free port whose every reply is LISTING, cut to `cut` bytes of body."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    state = {"cut": len(LISTING), "stop": False}

    def serve() -> None:
        while not state["stop"]:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                head = f"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {len(LISTING)}\r\n\r\n".encode()
                conn.sendall(head + LISTING[: state["cut"]])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", state
    state["stop"] = True
    sock.close()


def client(url: str, guarded: bool = True):
    c = boto3.client("route53", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
                     aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))
    if guarded:
        aws_clients.refuse_short_replies(c)  # what every dnsctl client gets (services/aws_clients.py)
    return c


def test_a_whole_reply_parses(server):
    url, _ = server
    assert [z["Name"] for z in client(url).list_hosted_zones()["HostedZones"]] == ["example.test."]


def test_botocore_alone_parses_a_reply_cut_after_its_headers_as_no_zones(server):
    url, state = server
    state["cut"] = 0
    assert client(url, guarded=False).list_hosted_zones().get("HostedZones", []) == []


@pytest.mark.parametrize("cut", [0, 100])
def test_a_reply_cut_short_fails_instead_of_listing_no_zones(server, cut):
    url, state = server
    state["cut"] = cut
    with pytest.raises(BotoCoreError, match="expected"):
        client(url).list_hosted_zones()
