"""Signed plans: the planner signs every plan with Ed25519; enactors apply only plans that verify.

Why: a checksum proves a plan was not damaged, not who wrote it. Anyone who can write the
bucket could re-checksum a plan and have it served within a second, or publish one with
inflated capacities that makes the planner refuse every later plan as unsafe. A signature ties
a plan to the planner's private key; the enactors (and the planner's own safety check) hold
only the public key.

What is signed: the plan's canonical JSON without `sha256` and `signature` (the same bytes its
checksum covers, `Plan.body()`), so the signature covers every field an enactor acts on.
`signature.key_id` names the key (the first 16 hex digits of the SHA-256 of the raw public
key), so a plan signed with another key is reported as such, which helps with key rotation.

Where the keys come from (first match wins):
- private key (planner): DNSCTL_PLAN_SIGNING_KEY (PEM text), DNSCTL_PLAN_SIGNING_KEY_FILE (a PEM
  file), DNSCTL_PLAN_SIGNING_KEY_SECRET (an AWS Secrets Manager secret id whose SecretString is
  the PEM: how the ECS planner task gets it, deploy/aws/dnsctl.yaml);
- public key (enactors): DNSCTL_PLAN_PUBLIC_KEY (PEM text), DNSCTL_PLAN_PUBLIC_KEY_FILE; the
  planner verifies with the public half of its own key.
Key text may also be just the one base64 line of the PEM (Ed25519 PEMs have one), which fits a
CloudFormation parameter.
`dnsctl up` generates a key pair in its state directory (mode 600, `generate_key_pair`).

Verification happens on the plan store's read path (services/plan/store.py): a store given a
verifier raises PlanInvalid for an unsigned or badly signed plan, exactly as for a corrupt one,
so every reader (enactor core: `plan_rejected`; planner: skipped as baseline) treats it alike.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.plan.keys import (  # noqa: F401 - re-exported: where the keys are found
    PRIVATE_KEY_ENV,
    PRIVATE_KEY_FILE,
    PRIVATE_KEY_FILE_ENV,
    PRIVATE_KEY_SECRET_ENV,
    PUBLIC_KEY_ENV,
    PUBLIC_KEY_FILE,
    PUBLIC_KEY_FILE_ENV,
)
from services.plan.model import Plan, PlanSignature, canonical_json


class SigningKeyError(ValueError):
    """A key is missing, unreadable or not an Ed25519 key; the message says which and where.

    A ValueError, so the services' start-up reports it as bad settings (exit 2), not a traceback."""


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _signed_bytes(plan: Plan) -> bytes:
    return canonical_json(plan.body())


@dataclass(frozen=True)
class PlanSigner:
    """Signs plans with the planner's private key."""

    private: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        return key_id(self.private.public_key())

    def verifier(self) -> PlanVerifier:
        return PlanVerifier(self.private.public_key())

    def sign(self, plan: Plan) -> Plan:
        signature = self.private.sign(_signed_bytes(plan))
        return plan.with_signature(
            PlanSignature(key_id=self.key_id, ed25519=base64.b64encode(signature).decode("ascii"))
        )

    @classmethod
    def from_pem(cls, pem: bytes | str, where: str) -> PlanSigner:
        return cls(_key(pem, where, "PRIVATE KEY", Ed25519PrivateKey))

    @classmethod
    def load(cls, file: Path | None = None, secret: str | None = None, secrets_client=None) -> PlanSigner | None:
        """The private key from PEM text in DNSCTL_PLAN_SIGNING_KEY, else `file`, else Secrets Manager
        secret `secret`; None when none is given (the planner then publishes unsigned plans)."""
        if os.environ.get(PRIVATE_KEY_ENV):
            return cls.from_pem(os.environ[PRIVATE_KEY_ENV], PRIVATE_KEY_ENV)
        if file is not None:
            return cls.from_file(Path(file))
        if secret:
            return cls.from_secret(secret, secrets_client)
        return None

    @classmethod
    def from_file(cls, path: Path) -> PlanSigner:
        return cls.from_pem(_read(path, "plan signing key"), str(path))

    @classmethod
    def from_secret(cls, secret_id: str, client=None) -> PlanSigner:
        """The PEM held by an AWS Secrets Manager secret (SecretString), read once at start."""
        from botocore.exceptions import BotoCoreError, ClientError

        if client is None:
            from services.aws_clients import secretsmanager_client

            client = secretsmanager_client()
        try:
            value = client.get_secret_value(SecretId=secret_id)
        except (ClientError, BotoCoreError) as exc:
            raise SigningKeyError(f"cannot read the plan signing key from Secrets Manager secret {secret_id}: {exc}") from exc
        pem = value.get("SecretString")
        if not pem:
            raise SigningKeyError(f"Secrets Manager secret {secret_id} has no SecretString (expected the PEM key)")
        return cls.from_pem(pem, f"Secrets Manager secret {secret_id}")


@dataclass(frozen=True)
class PlanVerifier:
    """Checks a plan's signature against the one public key this process trusts."""

    public: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def problem(self, plan: Plan) -> str | None:
        """Why `plan` must not be trusted, or None when its signature verifies."""
        sig = plan.signature
        if sig is None:
            return f"the plan is not signed (this reader trusts only plans signed by key {self.key_id})"
        if sig.key_id != self.key_id:
            return f"the plan is signed by key {sig.key_id}, this reader trusts key {self.key_id}"
        try:
            raw = base64.b64decode(sig.ed25519, validate=True)
            self.public.verify(raw, _signed_bytes(plan))
        except (InvalidSignature, binascii.Error, ValueError):
            return f"the plan's signature does not verify with key {self.key_id} (tampered or re-checksummed)"
        return None

    @classmethod
    def from_pem(cls, pem: bytes | str, where: str) -> PlanVerifier:
        return cls(_key(pem, where, "PUBLIC KEY", Ed25519PublicKey))

    @classmethod
    def from_file(cls, path: Path) -> PlanVerifier:
        return cls.from_pem(_read(path, "plan public key"), str(path))

    @classmethod
    def load(cls, file: Path | None = None) -> PlanVerifier | None:
        """The public key from PEM text in DNSCTL_PLAN_PUBLIC_KEY, else `file`; None when neither is given."""
        if os.environ.get(PUBLIC_KEY_ENV):
            return cls.from_pem(os.environ[PUBLIC_KEY_ENV], PUBLIC_KEY_ENV)
        if file is not None:
            return cls.from_file(Path(file))
        return None

    @classmethod
    def from_env(cls) -> PlanVerifier | None:
        """For tools outside the services (the CLI's direct S3 commands): the env's public key, if any."""
        file = os.environ.get(PUBLIC_KEY_FILE_ENV)
        return cls.load(Path(file) if file else None)


def _key(text: bytes | str, where: str, label: str, kind: type):
    """Load a PEM (or its one base64 line) of `label` ("PRIVATE KEY" / "PUBLIC KEY"); it must be Ed25519."""
    data = _pem(text, label)
    what = "plan signing key" if label == "PRIVATE KEY" else "plan public key"
    try:
        if label == "PRIVATE KEY":
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"the {what} from {where} is not a PEM {label.lower()}: {exc}") from exc
    if not isinstance(key, kind):
        raise SigningKeyError(f"the {what} from {where} is not an Ed25519 key")
    return key


def _pem(text: bytes | str, label: str) -> bytes:
    """PEM as given, or the one base64 line of an Ed25519 PEM (what fits a CloudFormation parameter)."""
    data = text.encode() if isinstance(text, str) else text
    if data.strip().startswith(b"-----"):
        return data
    return b"-----BEGIN " + label.encode() + b"-----\n" + data.strip() + b"\n-----END " + label.encode() + b"-----\n"


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the {what} at {path}: {exc.strerror or exc}") from exc


def generate_key_pair(directory: Path) -> tuple[Path, Path]:
    """Make sure `directory` holds a key pair (mode 600); returns (private key file, public key file).

    An existing pair is kept, so plans signed by an earlier run still verify after a restart.
    """
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / PRIVATE_KEY_FILE, directory / PUBLIC_KEY_FILE
    if private_path.exists():
        signer = PlanSigner.from_file(private_path)
    else:
        signer = PlanSigner(Ed25519PrivateKey.generate())
        pem = signer.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private(private_path, pem)
    public_pem = signer.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if not public_path.exists() or public_path.read_bytes() != public_pem:
        _write_private(public_path, public_pem)
    return private_path, public_path


def _write_private(path: Path, data: bytes) -> None:
    # Created with mode 600 from the start: the key is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
