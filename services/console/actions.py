"""What the console's buttons do: each one the same call an operator's CLI makes.

Chaos toggles, freeze/thaw and drain/undrain go to the planner's and enactors' REST APIs with
the stack's token (cli/client.py); the race button runs the race lab's scripted October replay
(lab/race/scenario.py) on this stack in a thread, one at a time, and publishes its moments and
verdict as they come, then the model checker's shortest October race (lab/race/trace.py), linked
into the page's trace viewer; repair is lab/repair.py on Route 53 directly (no enactor needed). The
console checks the caller's token before any of these (app.py); the services check it again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cli.client import ServiceClient, ServiceError
from services.auth import load_token
from services.console.hub import Hub
from services.logs import get_logger
from services.prober.cell_groups import CELLMAP, cell_of_enactor

RACE_CALL_TIMEOUT_S = 30.0  # per call the race makes to the planner, enactors and prober


class ActionRefused(Exception):
    """The action cannot run now (another race is running, an unknown enactor, ...)."""

    def __init__(self, message: str, status: int = 409, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass
class Targets:
    planner_url: str
    enactor_urls: dict[str, str]
    prober_url: str | None
    dns: tuple[str, int]
    state_dir: Path
    log_dir: Path | None


@dataclass
class RaceState:
    running: bool = False
    mode: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    moments: list[dict[str, Any]] = field(default_factory=list)
    verdict: dict[str, Any] | None = None
    # The model checker's side, after the verdict: {"running": true} while it explores, then
    # lab/race/trace.py's CheckerResult.as_json with the page's link to the counterexample.
    checker: dict[str, Any] | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Actions:
    def __init__(self, targets: Targets, hub: Hub, timeout_s: float = 15.0):
        self.targets = targets
        self.hub = hub
        self.timeout_s = timeout_s
        self.race = RaceState()
        self._race_lock = threading.Lock()
        self._log = get_logger(component="console-actions")
        self._dry_run_supported: bool | None = None

    # -- clients ---------------------------------------------------------------------------

    def planner(self) -> ServiceClient:
        return ServiceClient("planner", self.targets.planner_url, load_token(), self.timeout_s)

    def enactor(self, name: str) -> ServiceClient:
        url = self.targets.enactor_urls.get(name)
        if url is None:
            raise ActionRefused(f"no enactor named {name!r} (known: {', '.join(sorted(self.targets.enactor_urls))})", 404)
        return ServiceClient(name, url, load_token(), self.timeout_s)

    def _call(self, what: str, fn) -> Any:
        try:
            result = fn()
        except ServiceError as exc:
            self._log.warning("console_action_failed", action=what, error=str(exc)[:300])
            raise ActionRefused(str(exc), exc.status or 502, exc.body) from exc
        self._log.info("console_action", action=what)
        return result

    # -- chaos, freeze, drain ----------------------------------------------------------------

    def chaos(self, enactor: str, faults: dict[str, Any]) -> Any:
        client = self.enactor(enactor)
        return self._call(f"chaos {enactor}", lambda: client.post("/v1/chaos", faults))

    def chaos_clear(self, enactor: str | None) -> dict[str, Any]:
        # Every enactor with chaos routes: the cell map's enactors have none (nothing to clear there).
        names = [enactor] if enactor else sorted(n for n in self.targets.enactor_urls if cell_of_enactor(n) != CELLMAP)
        out: dict[str, Any] = {}
        for name in names:
            client = self.enactor(name)
            out[name] = self._call(f"chaos clear {name}", lambda c=client: c.delete("/v1/chaos"))
        if not enactor:
            # The planner's burst is a chaos toggle too (`dnsctl chaos clear` stops it as well).
            out["planner"] = self._call("chaos clear planner", lambda: self.planner().delete("/v1/chaos/burst"))
        return out

    def pause(self, enactor: str, paused: bool) -> Any:
        client = self.enactor(enactor)
        path = "/v1/chaos/pause" if paused else "/v1/chaos/resume"
        return self._call(f"{'pause' if paused else 'resume'} {enactor}", lambda: client.post(path))

    def freeze(self, reason: str) -> Any:
        return self._call("freeze", lambda: self.planner().post("/v1/planner/freeze", {"reason": reason, "by": "console"}))

    def thaw(self) -> Any:
        return self._call("thaw", lambda: self.planner().post("/v1/planner/thaw", {"by": "console"}))

    def planner_offers_dry_run(self) -> bool:
        """Whether the planner's drain route takes `dry_run` (read once from its OpenAPI).
        Sending it to a planner that does not know it would drain for real, so it is never guessed."""
        if self._dry_run_supported is None:
            try:
                spec = httpx.get(self.targets.planner_url.rstrip("/") + "/openapi.json", timeout=self.timeout_s).json()
                params = spec["paths"]["/v1/fleet/azs/{az}/drain"]["post"].get("parameters", [])
                self._dry_run_supported = any(p.get("name") == "dry_run" for p in params)
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                return False
        return self._dry_run_supported

    def drain(self, az: str, undrain: bool, *, dry_run: bool, force: bool) -> dict[str, Any]:
        verb = "undrain" if undrain else "drain"
        offers = self.planner_offers_dry_run()
        if dry_run and not offers:
            return {"dry_run": True, "preview_available": False,
                    "note": "this planner offers no dry run: confirming publishes the plan at once; "
                            "its safety check runs then and refuses an unsafe plan"}
        params: dict[str, Any] = {"force": force or None}
        if offers:
            params["dry_run"] = dry_run
        result = self._call(f"{verb} {az}" + (" (dry run)" if dry_run else ""),
                            lambda: self.planner().post(f"/v1/fleet/azs/{az}/{verb}", **params))
        return {"dry_run": dry_run, "preview_available": offers, "result": result}

    # -- repair ------------------------------------------------------------------------------

    def repair(self, endpoint: str, *, break_lock: bool, dry_run: bool) -> dict[str, Any]:
        from cli.repair_cmd import _json as repair_json
        from lab.repair import RepairError, describe_change, execute, prepare
        from services.aws_clients import route53_client
        from services.plan.store import PlanStore

        route53 = route53_client()
        try:
            plan = prepare(route53, endpoint, break_lock=break_lock, store=PlanStore.from_env(None, None))
        except RepairError as exc:
            raise ActionRefused(str(exc), 409) from exc
        if dry_run:
            return repair_json(plan, None, describe_change)
        result = execute(route53, plan)
        self._log.warning("console_repair", endpoint=endpoint, ok=result.ok, error=result.error)
        return repair_json(plan, result, describe_change)

    # -- the race ----------------------------------------------------------------------------

    def start_race(self) -> dict[str, Any]:
        with self._race_lock:
            if self.race.running:
                raise ActionRefused("a race is already running on this stack; wait for its verdict")
            self.race = RaceState(running=True, started_at=time.time())
        self.hub.publish("race", self.race.as_json())
        threading.Thread(target=self._run_race, name="console-race", daemon=True).start()
        return self.race.as_json()

    def _run_race(self) -> None:
        from lab.race.control import Control
        from lab.race.evidence import gather
        from lab.race.scenario import Race
        from lab.race.stack import RaceStack
        from lab.race.trace import LEGACY_TRACE, CheckerRun
        from lab.race.verdict import judge

        t = self.targets
        logs = {p.stem: p for p in t.log_dir.glob("*.log")} if t.log_dir and t.log_dir.is_dir() else {}
        # The October replay runs on the regional system: its planner and its trio, never a cell's
        # or the cell map's enactors (the console lists those too, to group them).
        regional = {name: url for name, url in dict(t.enactor_urls).items() if cell_of_enactor(name) is None}
        stack = RaceStack(host=t.dns[0], planner=t.planner_url, enactors=regional, prober=t.prober_url or "",
                          dns=t.dns, state_dir=t.state_dir, logs=logs)
        state = self.race
        checker = None
        try:
            # A loaded machine answers slowly, not never: one planner answer past the race lab's
            # default 10 s aborted the whole race from the page (seen at load 65). The script's own
            # waits stay bounded; a slow call only makes the race slower.
            control = Control(stack, timeout_s=RACE_CALL_TIMEOUT_S)
            guard = control.status(next(iter(control.enactors))).get("version_guard")
            state.mode = "guarded" if guard else "legacy"
            self._log.warning("console_race_started", mode=state.mode)

            def moment(m) -> None:
                state.moments.append({"t": m.t, "who": m.who, "text": m.text})
                self.hub.publish("race", state.as_json())

            run = Race(control, on_moment=moment).run()
            # The checker's side of the story, as `dnsctl race` on a stack with a console tells it:
            # its shortest October race, written beside the stack while the evidence is gathered,
            # which this page's trace viewer opens (/#trace=NAME, GET /api/traces/NAME).
            checker = CheckerRun(t.state_dir, guarded=bool(run.version_guard))
            evidence = gather(control, run)
            verdict = judge(evidence)
            state.verdict = verdict.as_dict()
            state.moments = [{"t": m.t, "who": m.who, "text": m.text, "kind": m.kind} for m in evidence.moments]
            state.checker = {"running": True}
            self._log.warning("console_race_done", mode=state.mode, passed=verdict.passed, headline=verdict.headline)
            self.hub.publish("race", state.as_json())
            checked = checker.result()
            state.checker = {"running": False, **checked.as_json(f"/#trace={LEGACY_TRACE}")}
            self._log.info("console_race_checked", trace=state.checker["trace"], guard_held=checked.guard_held)
        except Exception as exc:  # noqa: BLE001 - the page shows why the race could not run
            state.error = f"{type(exc).__name__}: {exc}"[:500]
            self._log.warning("console_race_failed", error=state.error)
        finally:
            if checker is not None:
                checker.stop()  # a race that failed midway leaves no checker process behind
            if state.checker is not None and state.checker.get("running"):
                state.checker = None
            state.running = False
            state.finished_at = time.time()
            self.hub.publish("race", state.as_json())
