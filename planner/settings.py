"""The planner's configuration: one settings object, from the environment and CLI flags.

The plan store's bucket and region come from DNSCTL_BUCKET and DNSCTL_REGION (shared with the
enactors); the planner's own settings from DNSCTL_PLANNER_<NAME>. Flags given to `dnsctl planner` override the environment. The API token is not a setting: it is
read through services.auth so it never appears in a settings dump or a log.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from planner.fleet import MAX_GENERATED_LBS
from planner.planning import DEFAULT_MAX_CAPACITY_DROP
from services.cells.naming import CELL_ENV, CELL_PATTERN
from services.plan.signing import PlanSigner
from services.stack import DEFAULT_BUCKET, DEFAULT_REGION, Ports


class PlannerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DNSCTL_PLANNER_", extra="ignore", frozen=True, populate_by_name=True
    )

    bucket: str = Field(
        DEFAULT_BUCKET,
        min_length=3,
        max_length=63,
        validation_alias=AliasChoices("bucket", "DNSCTL_BUCKET"),
        description="S3 bucket of the plan store",
    )
    region: str = Field(
        DEFAULT_REGION,
        validation_alias=AliasChoices("region", "DNSCTL_REGION"),
        description="Region whose plans this planner writes",
    )
    cell: str | None = Field(
        None,
        pattern=CELL_PATTERN,
        validation_alias=AliasChoices("cell", CELL_ENV),
        description="The cell this planner plans for (its own plan stream and fleet; services/cells/naming.py); unset: the regional system",
    )
    host: str = "127.0.0.1"
    port: int = Field(Ports().planner, ge=1, le=65535)
    plan_interval: float = Field(30.0, gt=0, description="Seconds between scheduled plans")
    fleet_file: Path | None = Field(None, description="TOML or YAML fleet file; default: the demo fleet")
    lbs: int | None = Field(None, ge=3, le=MAX_GENERATED_LBS, description="Generate a fleet of this many LBs")
    seed: int = Field(0, description="Seed of the generated fleet and of the simulated traffic drift")
    # Simulated traffic drift is a demo setting: off unless asked (`dnsctl up` turns it on with --drift).
    drift: float = Field(
        0.0, ge=0, le=0.2, description="Largest relative weight change per scheduled plan (demo; 0 = off)"
    )
    drift_bound: float = Field(
        0.10, ge=0, le=0.5, description="How far drift may move an LB from its capacity share"
    )
    max_capacity_drop: float = Field(DEFAULT_MAX_CAPACITY_DROP, gt=0, le=1)
    applied_check_interval: float = Field(
        30.0, ge=0, description="Seconds between reads of the versions Route 53 has applied (the numbering floor)"
    )
    planner_id: str = Field("planner", description="Names this planner in logs and freeze markers")
    allow_chaos: bool = Field(False, description="Enable the chaos routes (the race lab's plan burst, planner/burst.py)")
    signing_key_file: Path | None = Field(
        None,
        validation_alias=AliasChoices("signing_key_file", "DNSCTL_PLAN_SIGNING_KEY_FILE"),
        description="Ed25519 private key (PEM) every plan is signed with",
    )
    signing_key_secret: str | None = Field(
        None,
        validation_alias=AliasChoices("signing_key_secret", "DNSCTL_PLAN_SIGNING_KEY_SECRET"),
        description="AWS Secrets Manager secret holding that key (on ECS); unset with no key file: plans are unsigned",
    )

    def plan_signer(self) -> PlanSigner | None:
        """The signer of every plan this planner publishes (services/plan/signing.py), or None."""
        return PlanSigner.load(self.signing_key_file, self.signing_key_secret)

    @model_validator(mode="after")
    def _one_fleet_source(self) -> PlannerSettings:
        if self.fleet_file is not None and self.lbs is not None:
            raise ValueError("give either a fleet file or --lbs, not both")
        if self.cell and self.planner_id == "planner":
            object.__setattr__(self, "planner_id", f"{self.cell}-planner")  # names it in logs and freeze markers
        return self
