"""Does a drain survive kill -9 of the planner? Counted over DNS, on a live stack of real processes.

Starts `dnsctl up` on free ports (its own state dir), drains use1-az4, waits until DNS answers
carry no az4 address, then samples the endpoint over UDP DNS every 200 ms: N answers before, kill
-9 of the planner, a new planner process started with the same arguments, N answers after (the
new planner publishes at once and then every plan interval). Prints how many answers carried az4
addresses before and after, and the planner's fleet revision and drained AZs after the restart.

    .venv/bin/python benchmarks/drain_restart_bench.py [--samples 90] [--plan-interval 2]

Issue 13 measured 0 of 90 before and 38 of 90 twelve seconds after on the in-memory fleet.
Nothing here asserts anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import dns.message
import dns.query
import dns.rdatatype
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.fleet import demo_fleet  # noqa: E402
from services.stack import EMULATOR_CREDENTIALS  # noqa: E402
from services.supervisor import free_port  # noqa: E402

ENDPOINT = "dynamodb.us-east-1.api.aws"


def answer(port: int) -> set[str] | None:
    q = dns.message.make_query(ENDPOINT, dns.rdatatype.A)
    try:
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=1.0)
    except (dns.exception.Timeout, OSError):
        return None
    return {item.address for rrset in r.answer for item in rrset if hasattr(item, "address")}


def applied(route53) -> int:
    """The version the endpoint's `_applied` record names (0: none yet), read with enactor/layout.py."""
    from enactor import layout
    from services.route53.records import RecordSet
    from services.zones import find_zone_id

    zone_id = find_zone_id(ENDPOINT, route53)
    if zone_id is None:
        return 0
    page = route53.list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=layout.applied_name(ENDPOINT), StartRecordType="TXT", MaxItems="1"
    )
    view = layout.read_endpoint(ENDPOINT, [RecordSet.from_boto(r) for r in page["ResourceRecordSets"][:1]])
    return view.applied_value.version if view.applied_value else 0


def sample(port: int, n: int, az4: set[str]) -> tuple[int, int, int]:
    """(answers with an az4 address, empty answers, timeouts) over n samples 200 ms apart."""
    with_az4 = empty = lost = 0
    for _ in range(n):
        started = time.monotonic()
        got = answer(port)
        if got is None:
            lost += 1
        elif not got:
            empty += 1
        elif got & az4:
            with_az4 += 1
        time.sleep(max(0.0, 0.2 - (time.monotonic() - started)))
    return with_az4, empty, lost


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=90)
    ap.add_argument("--plan-interval", type=float, default=2.0)
    args = ap.parse_args()

    az4 = {a for b in demo_fleet().load_balancers if b.az == "use1-az4" and b.endpoint == ENDPOINT for a in b.ipv4}
    state = Path(tempfile.mkdtemp(prefix="drain-restart-"))
    ports = {k: free_port("127.0.0.1", "udp+tcp") for k in ("emulator", "planner", "a", "b", "c", "dns", "prober")}
    dnsctl = [sys.executable, "-m", "cli.main"]
    env = {**os.environ, "DNSCTL_STATE_DIR": str(state), "DNSCTL_API_TOKEN": "drain-restart-bench"}
    env.pop("AWS_ENDPOINT_URL", None)
    up = subprocess.Popen(
        [*dnsctl, "up", "--no-live", "--state-dir", str(state), "--plan-interval", str(args.plan_interval),
         "--emulator-port", str(ports["emulator"]), "--planner-port", str(ports["planner"]),
         "--enactor-ports", f"{ports['a']},{ports['b']},{ports['c']}", "--dns-port", str(ports["dns"]),
         "--prober-port", str(ports["prober"])],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    planner = f"http://127.0.0.1:{ports['planner']}"
    replacement = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not answer(ports["dns"]):
            time.sleep(0.5)
        stack = json.loads((state / "stack.json").read_text())
        planner_pid, planner_args = stack["services"]["planner"]["pid"], stack["services"]["planner"]["args"]
        cli_env = {**env, "DNSCTL_PLANNER_URL": planner}
        drain = json.loads(subprocess.run([*dnsctl, "fleet", "drain-az", "use1-az4", "--json"], cwd=ROOT,
                                          env=cli_env, check=True, capture_output=True, text=True).stdout)
        route53 = boto3.client(
            "route53",
            endpoint_url=f"http://127.0.0.1:{ports['emulator']}",
            aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120 and applied(route53) < drain["plan"]["version"]:
            time.sleep(0.2)
        print(f"drained use1-az4 in plan {drain['plan']['version']}: applied in Route 53 after "
              f"{time.monotonic() - t0:.1f}s")
        before = sample(ports["dns"], args.samples, az4)

        newest_before = httpx.get(f"{planner}/v1/planner/status", timeout=10).json()["newest_version"]
        os.kill(planner_pid, signal.SIGKILL)
        killed_at = time.monotonic()
        planner_env = {**env, **EMULATOR_CREDENTIALS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ports['emulator']}"}
        log = open(state / "replacement-planner.log", "wb")  # noqa: SIM115 - closed with the process
        replacement = subprocess.Popen([*dnsctl, *planner_args], cwd=ROOT, env=planner_env,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        up_at = None
        while time.monotonic() - killed_at < 120 and up_at is None:
            try:
                if httpx.get(f"{planner}/healthz", timeout=1).status_code == 200:
                    up_at = time.monotonic()
            except httpx.HTTPError:
                time.sleep(0.2)
        print(f"replacement planner answering {up_at - killed_at:.1f}s after the kill" if up_at else
              "replacement planner did not come up:\n" + (state / "replacement-planner.log").read_text()[-2000:])
        after = sample(ports["dns"], args.samples, az4)
        status = httpx.get(f"{planner}/v1/planner/status", timeout=10).json()
        published = (state / "replacement-planner.log").read_text().count('"event": "plan_published"')
        print(f"the replacement planner published {published} plans while DNS was sampled")
        print(f"plans: newest {newest_before} before the kill, {status['newest_version']} after the restart; "
              f"Route 53 applied {applied(route53)} at the end")
        print(f"before kill -9: {before[0]} of {args.samples} answers had az4 addresses "
              f"({before[1]} empty, {before[2]} timeouts)")
        print(f"after kill -9 and restart ({time.monotonic() - killed_at:.0f}s sampled): {after[0]} of "
              f"{args.samples} answers had az4 addresses ({after[1]} empty, {after[2]} timeouts)")
        fleet = status.get("fleet") or {}
        print(f"restarted planner: fleet revision {fleet.get('revision')}, drained AZs {fleet.get('drained_azs')}, "
              f"newest plan {status.get('newest_version')}")
    finally:
        if replacement is not None:
            os.killpg(replacement.pid, signal.SIGTERM)
            replacement.wait(timeout=20)
        os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
