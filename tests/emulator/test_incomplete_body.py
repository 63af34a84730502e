"""A client killed mid-request: the emulator refuses a body shorter than its Content-Length, as
S3 (IncompleteBody) and Route 53 do, and stores nothing of it (services/emulator/moto_gaps.py,
gap 19). Found by `dnsctl soak`: a planner kill -9 while it wrote the fleet left an empty object
under the full one's checksum, and every later read of the fleet failed, across restarts.

A real emulator process with a data dir; the torn request is sent over a raw socket with a real
SigV4 signature, then the socket is closed before the body is complete.
"""

from __future__ import annotations

import socket
import uuid

import botocore.session
import httpx
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest

from services.emulator.server import METRICS_PATH
from tests.conftest import start_emulator
from tests.emulator.conftest import client


def _send_torn_put(url: str, path: str, declared: bytes, sent: int) -> None:
    """PUT `declared` to `path`, signed for its full length, but send only `sent` bytes of it."""
    credentials = botocore.session.get_session().get_credentials() or botocore.credentials.Credentials("testing", "testing")
    request = AWSRequest(method="PUT", url=f"{url}{path}", data=declared,
                         headers={"Content-Length": str(len(declared)), "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    S3SigV4Auth(credentials, "s3", "us-east-1").add_auth(request)
    host, port = url.removeprefix("http://").split(":")
    head = f"PUT {path} HTTP/1.1\r\nHost: {host}:{port}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in request.headers.items() if k.lower() != "host") + "\r\n"
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head.encode() + declared[:sent])
        sock.shutdown(socket.SHUT_WR)  # the writer dies here: the rest of the body never comes
        try:
            sock.recv(4096)
        except OSError:
            pass


def test_a_body_cut_short_is_refused_and_stores_nothing(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    data_dir = tmp_path_factory.mktemp("torn")
    emu = start_emulator(tmp_path_factory, "--data-dir", str(data_dir))
    try:
        s3 = client(emu, "s3")
        bucket = f"torn-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket=bucket, Key="fleet.json", Body=b'{"version": 1}')

        _send_torn_put(emu.url, f"/{bucket}/fleet.json", b'{"version": 2, "padding": "' + b"x" * 500 + b'"}', sent=20)
        _send_torn_put(emu.url, f"/{bucket}/new.json", b"y" * 300, sent=0)

        assert s3.get_object(Bucket=bucket, Key="fleet.json")["Body"].read() == b'{"version": 1}'
        assert len(s3.list_object_versions(Bucket=bucket, Prefix="fleet.json")["Versions"]) == 1
        assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="new.json")
        metrics = httpx.get(f"{emu.url}{METRICS_PATH}").text
        assert 'dnsctl_emulator_incomplete_bodies_total{service="s3"} 2.0' in metrics

        # Nothing of it was journaled: a kill -9 and a restart on the same data dir agree.
        emu.process.kill9()
        emu = start_emulator(tmp_path_factory, "--data-dir", str(data_dir), port=emu.port)
        s3 = client(emu, "s3")
        assert s3.get_object(Bucket=bucket, Key="fleet.json")["Body"].read() == b'{"version": 1}'
        assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="new.json")
    finally:
        emu.process.stop()
