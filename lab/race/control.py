"""The race driver's handle on a running stack: chaos, plans, statuses, Route 53, DNS and alarms.

Everything goes through the services' public interfaces, as an operator's tools would: the
planner's and enactors' HTTP APIs (with the bearer token), Route 53's control API (boto3), and
DNS queries to the data plane (dnspython, and `dig` for the evidence a person would collect).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from cli.client import ServiceClient
from enactor import layout
from lab.race.stack import RaceStack
from services.auth import load_token
from services.dns.snapshot import read_zone
from services.zones import zone_id_for

DIG = "dig"


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str  # without the trailing dot
    record_types: tuple[str, ...]
    zone_id: str


@dataclass(frozen=True, slots=True)
class Answer:
    """One DNS answer: rcode (None: no answer in time) and how many addresses it held."""

    rcode: str | None
    addresses: int
    via: str = "dnspython"
    text: str = ""

    @property
    def empty(self) -> bool:
        """NOERROR (or NXDOMAIN) with zero addresses: what customers saw on 20 October."""
        return self.rcode in ("NOERROR", "NXDOMAIN") and self.addresses == 0


class Control:
    def __init__(self, stack: RaceStack, route53=None, timeout_s: float = 10.0):
        token = load_token()
        self.stack = stack
        self.planner = ServiceClient("planner", stack.planner, token, timeout_s)
        self.prober = ServiceClient("prober", stack.prober, token, timeout_s)
        self.enactors = {name: ServiceClient(name, url, token, timeout_s) for name, url in stack.enactors.items()}
        if route53 is None:
            from services.aws_clients import route53_client

            route53 = route53_client()
        self.route53 = route53
        self._endpoints: list[Endpoint] | None = None

    # -- the planner -------------------------------------------------------------------------

    def endpoints(self) -> list[Endpoint]:
        if self._endpoints is None:
            fleet = self.planner.get("/v1/fleet")
            self._endpoints = [
                Endpoint(e["name"], tuple(e["record_types"]), zone_id_for(e.get("hosted_zone") or e["name"], self.route53))
                for e in fleet["endpoints"]
            ]
        return self._endpoints

    def newest_version(self) -> int | None:
        return self.planner.get("/v1/planner/status").get("newest_version")

    def publish(self, reason: str) -> int:
        return int(self.planner.post("/v1/plans", {"reason": reason[:400]})["version"])

    def burst(self, every_ms: int, for_s: float) -> dict[str, Any]:
        return self.planner.post("/v1/chaos/burst", {"every_ms": every_ms, "for_s": for_s})["burst"]

    def burst_status(self) -> dict[str, Any] | None:
        return self.planner.get("/v1/chaos/burst")["burst"]

    def stop_burst(self) -> None:
        self.planner.delete("/v1/chaos/burst")

    def hold_schedule(self, for_s: float) -> None:
        self.planner.post("/v1/chaos/schedule-hold", {"for_s": for_s, "by": "race"})

    def release_schedule(self) -> None:
        self.planner.delete("/v1/chaos/schedule-hold")

    def frozen(self) -> bool:
        return bool(self.planner.get("/v1/planner/status").get("frozen"))

    # -- the enactors ------------------------------------------------------------------------

    def chaos(self, enactor: str, **faults: Any) -> dict[str, Any]:
        return self.enactors[enactor].post("/v1/chaos", faults)["faults"]

    def pause(self, enactor: str) -> None:
        self.enactors[enactor].post("/v1/chaos/pause")

    def resume(self, enactor: str) -> None:
        self.enactors[enactor].post("/v1/chaos/resume")

    def clear(self, enactor: str) -> None:
        self.enactors[enactor].delete("/v1/chaos")

    def status(self, enactor: str) -> dict[str, Any]:
        return self.enactors[enactor].get("/status")

    def endpoint_status(self, enactor: str) -> dict[str, dict[str, Any]]:
        return self.status(enactor).get("endpoints") or {}

    # -- Route 53, read as the enactors read it ----------------------------------------------

    def view(self, ep: Endpoint) -> layout.EndpointZone:
        zone, _ = read_zone(self.route53, ep.zone_id, layout.root_name(ep.name))
        return layout.read_endpoint(ep.name, zone)

    def views(self) -> dict[str, layout.EndpointZone]:
        return {ep.name: self.view(ep) for ep in self.endpoints()}

    # -- DNS -----------------------------------------------------------------------------------

    def ask(self, name: str, rtype: str, timeout_s: float = 0.5) -> Answer:
        host, port = self.stack.dns
        query = dns.message.make_query(name + ".", dns.rdatatype.from_text(rtype))
        try:
            reply = dns.query.udp(query, host, port=port, timeout=timeout_s)
        except (dns.exception.DNSException, OSError):
            return Answer(None, 0)
        count = sum(len(r) for r in reply.answer if r.rdtype == query.question[0].rdtype)
        return Answer(dns.rcode.to_text(reply.rcode()), count)

    def dig(self, name: str, rtype: str) -> Answer:
        """`dig @HOST -p PORT NAME TYPE`, the way an operator checks; dnspython when dig is absent."""
        host, port = self.stack.dns
        if shutil.which(DIG) is None:
            return self.ask(name, rtype)
        cmd = [DIG, f"@{host}", "-p", str(port), name, rtype, "+tries=1", "+time=2", "+noall", "+comments", "+answer"]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return Answer(None, 0, via="dig")
        rcode = None
        for line in out.splitlines():
            if "status:" in line:
                rcode = line.split("status:", 1)[1].split(",", 1)[0].strip()
        records = [line.split() for line in out.splitlines() if line.strip() and not line.startswith(";")]
        addresses = sum(1 for f in records if len(f) >= 5 and f[3] == rtype)
        command = " ".join(cmd[:6])
        return Answer(rcode, addresses, via="dig", text=f"$ {command}\n{out.strip()}")

    # -- the logs (the operators' API) -----------------------------------------------------------

    def log_size(self, service: str) -> int:
        path = self.stack.logs.get(service)
        return path.stat().st_size if path is not None and path.exists() else 0

    def events(self, service: str, since: int = 0) -> list[dict[str, Any]]:
        """The JSON events `service` logged after byte offset `since` (other lines are skipped)."""
        path = self.stack.logs.get(service)
        if path is None or not path.exists():
            return []
        with open(path, "rb") as fh:
            fh.seek(since)
            data = fh.read()
        out = []
        for line in data.decode("utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue  # a line being written right now, or not ours
        return out

    # -- the prober ----------------------------------------------------------------------------

    def alarms(self) -> list[dict[str, Any]]:
        return self.prober.get("/v1/alarms").get("alarms") or []

    def prober_probes(self) -> list[dict[str, Any]]:
        return self.prober.get("/v1/probes").get("probes") or []

    def prober_metric(self, name: str) -> float:
        """Sum of a Prometheus counter or gauge over its labels, from the prober's /metrics."""
        text = self.prober.request("GET", "/metrics")
        total = 0.0
        for line in str(text).splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total
