"""The enactor's configuration: one settings object, from the environment and CLI flags.

The plan store's bucket and region come from DNSCTL_BUCKET and DNSCTL_REGION (shared with the
planner); the mode from DNSCTL_VERSION_GUARD; everything else from DNSCTL_ENACTOR_<NAME>. Flags
given to `dnsctl enactor` override the environment. `core()` hands the protocol core the part
that shapes its decisions.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from enactor.protocol import CoreSettings
from services.cells.naming import CELL_ENV, CELL_PATTERN
from services.plan.signing import PlanVerifier
from services.stack import DEFAULT_BUCKET, DEFAULT_REGION


class EnactorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DNSCTL_ENACTOR_", extra="ignore", frozen=True, populate_by_name=True)

    enactor_id: str = Field("enactor-a", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", validation_alias=AliasChoices("enactor_id", "DNSCTL_ENACTOR_ID"))
    az: str = Field("use1-az1", min_length=1, max_length=32)
    host: str = "127.0.0.1"
    port: int = Field(8081, ge=1, le=65535)
    bucket: str = Field(DEFAULT_BUCKET, min_length=3, max_length=63, validation_alias=AliasChoices("bucket", "DNSCTL_BUCKET"))
    region: str = Field(DEFAULT_REGION, validation_alias=AliasChoices("region", "DNSCTL_REGION"))
    cell: str | None = Field(
        None,
        pattern=CELL_PATTERN,
        validation_alias=AliasChoices("cell", CELL_ENV),
        description="The cell this enactor works for: its plan stream, and only its endpoints' zones; unset: the regional system",
    )
    version_guard: bool = Field(True, validation_alias=AliasChoices("version_guard", "DNSCTL_VERSION_GUARD"))
    poll_interval: float = Field(1.0, gt=0, le=600, description="Seconds between plan store polls")
    keep_plans: int = Field(5, ge=1, le=1000, description="Trees of this many plans before the applied one are kept")
    lock_ttl_s: int = Field(60, ge=1, le=3600, description="How long a lock stays valid without a renewing batch")
    backoff_base_s: float = Field(0.2, gt=0, le=60)
    backoff_cap_s: float = Field(10.0, gt=0, le=600)
    propagation_timeout_s: float = Field(45.0, ge=0, le=600, description="Longest wait for a tree to be INSYNC")
    propagation_poll_s: float = Field(0.5, gt=0, le=60)
    allow_chaos: bool = False
    plan_public_key_file: Path | None = Field(
        None,
        validation_alias=AliasChoices("plan_public_key_file", "DNSCTL_PLAN_PUBLIC_KEY_FILE"),
        description="Ed25519 public key (PEM) plans must be signed with; unset (and no DNSCTL_PLAN_PUBLIC_KEY): unverified",
    )

    @model_validator(mode="after")
    def _consistent(self) -> EnactorSettings:
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("backoff_cap_s must be at least backoff_base_s")
        if self.propagation_timeout_s >= self.lock_ttl_s:
            # The lock is held while waiting for INSYNC; it must outlive the wait.
            raise ValueError("propagation_timeout_s must be shorter than lock_ttl_s")
        self.plan_verifier()  # a bad key stops the enactor at start, with the reason, not at the first plan
        return self

    def plan_verifier(self) -> PlanVerifier | None:
        """What the plan store checks every plan's signature with (services/plan/signing.py)."""
        return PlanVerifier.load(self.plan_public_key_file)

    def core(self) -> CoreSettings:
        return CoreSettings(
            enactor_id=self.enactor_id,
            version_guard=self.version_guard,
            keep_plans=self.keep_plans,
            lock_ttl_s=self.lock_ttl_s,
            backoff_base_s=self.backoff_base_s,
            backoff_cap_s=self.backoff_cap_s,
            poll_interval_s=self.poll_interval,
        )
