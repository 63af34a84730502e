"""The race's verdict: did the October outage happen, and did each mode do what it must?

`broken` is the same question in both modes: did any endpoint answer NOERROR with zero
addresses (dig, the race's own DNS probes, the prober), or did any root dangle? The checks are
what each mode promises:

  legacy   an endpoint answers NOERROR with zero addresses over dig; RootAliasDangling and
           EnactorStuck fire; and it stays broken (the next plan cannot heal it, every flip
           fails) until an operator acts
  guarded  enactor-c refuses its stale plan (refused_stale, or plan_superseded after a rejection,
           in its log); the prober records not
           a single empty-answer probe; no root ever dangles; every endpoint serves the last plan
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lab.race.evidence import Evidence


@dataclass(frozen=True, slots=True)
class Check:
    label: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    mode: str  # "legacy" | "guarded"
    broken: bool
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def headline(self) -> str:
        if self.mode == "legacy":
            if self.passed:
                return "BROKEN, as on 20 October: the stale plan was flipped in, its tree cleaned up, DNS answers nothing"
            return "legacy mode did not reproduce the whole outage" + (" (it broke, but not every sign showed)" if self.broken else "")
        if self.passed:
            return "HELD: the guard refused the stale plan and no endpoint ever answered empty"
        return "the guard did NOT hold" if self.broken else "guarded mode held DNS, but not every check passed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "broken": self.broken,
            "passed": self.passed,
            "headline": self.headline,
            "checks": [{"label": c.label, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


def _names(items) -> str:
    return ", ".join(dict.fromkeys(items)) or "none"


def judge(ev: Evidence) -> Verdict:
    empty = ev.empty_digs()
    broken = bool(
        empty or ev.witness_empty or ev.prober_empty_probes > 0 or ev.prober_empty_seconds > 0 or ev.dangling_seen or ev.fired("EndpointEmpty")
    )
    mode = "guarded" if ev.version_guard else "legacy"
    if mode == "legacy":
        end_empty = {n for n, _, _ in ev.empty_digs("end")}
        stays = [n for n in ev.dangling_at_end if n in end_empty]
        checks = (
            Check(
                "an endpoint answers NOERROR with zero addresses over dig",
                bool(empty),
                f"{_names(f'{n} {t}' for n, t, _ in empty)} ({empty[0][2].rcode}, 0 addresses, via {empty[0][2].via})" if empty
                else "every dig returned addresses",
            ),
            Check(
                "RootAliasDangling fired",
                bool(ev.fired("RootAliasDangling")),
                _names(str(a.get("endpoint")) for a in ev.fired("RootAliasDangling")),
            ),
            Check(
                "EnactorStuck fired",
                bool(ev.fired("EnactorStuck")),
                _names(str(a.get("enactor")) for a in ev.fired("EnactorStuck")) + f" ({ev.flip_failures} failed flips)",
            ),
            Check(
                "it stays broken until an operator acts",
                bool(stays),
                f"after plan {ev.final_version} was published: {_names(stays)} still dangles and answers empty"
                if stays else "no endpoint was still broken at the end",
            ),
        )
    else:
        # A newer plan than the race's last is fine: an attached stack's planner (`dnsctl up`, compose)
        # keeps publishing on its schedule while the race runs.
        behind = {n: v for n, v in ev.final_versions.items() if v is None or (ev.final_version is not None and v < ev.final_version)}
        checks = (
            Check("enactor-c refused its stale plan (refused_stale)", ev.refused_stale > 0,
                  f"{ev.refused_stale} refused_stale or plan_superseded events in enactor-c's log"),
            Check(
                "the prober recorded not a single empty-answer probe",
                ev.prober_empty_probes == 0 and ev.prober_empty_seconds == 0 and not ev.fired("EndpointEmpty"),
                f"{ev.prober_empty_probes:g} empty probes (dnsctl_probe_empty_total); EndpointEmpty fired "
                f"{len(ev.fired('EndpointEmpty'))} times",
            ),
            Check(
                "no root dangled; the race's own DNS probes saw no empty answer",
                not ev.dangling_seen and ev.witness_empty == 0 and not empty,
                f"{ev.witness_empty} empty of {ev.witness_answers} answers; dangling: {_names(ev.dangling_seen)}",
            ),
            Check(
                "every endpoint serves the last plan",
                not behind,
                f"plan {ev.final_version} or newer everywhere" if not behind else f"behind: {behind}",
            ),
        )
    return Verdict(mode, broken, checks)
