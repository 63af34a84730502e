"""The API token that guards every mutating HTTP route, and where processes find it.

The token comes from DNSCTL_API_TOKEN, or from the state directory's `token` file, which
`dnsctl up` writes with mode 600. Comparison is constant-time; the token is never logged.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TOKEN_ENV = "DNSCTL_API_TOKEN"


def state_dir() -> Path:
    return Path(os.environ.get("DNSCTL_STATE_DIR", ".dnsctl"))


def token_path() -> Path:
    return state_dir() / "token"


def load_token() -> str | None:
    """The configured token, or None when neither the env nor the token file provides one."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    try:
        value = token_path().read_text().strip()
    except OSError:
        return None
    return value or None


def ensure_token() -> str:
    """Return the token, generating the token file (mode 600) when none exists."""
    existing = load_token()
    if existing:
        return existing
    path = token_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def bearer_matches(authorization: str | None, expected: str) -> bool:
    """True when an Authorization header is exactly `Bearer <expected>`; any malformed header is False."""
    scheme, _, supplied = (authorization or "").partition(" ")
    # Headers arrive as latin-1 text, so any byte can be in them; compare bytes, since
    # compare_digest refuses str with non-ASCII characters (a TypeError, once a 500).
    given = supplied.strip().encode("utf-8", "surrogateescape")
    return scheme.lower() == "bearer" and secrets.compare_digest(given, expected.encode())


def bearer_dependency(expected: str | None):
    """A FastAPI dependency that admits only `Authorization: Bearer <expected>`.

    With no token configured, every mutating call is refused: an open control plane is worse
    than one nobody can change.
    """
    # Imported here: the CLI reads the token on every command and must not pay for FastAPI.
    from fastapi import Header, HTTPException, status

    def require_token(authorization: str | None = Header(default=None)) -> None:
        if expected is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "no API token is configured on this server")
        if not bearer_matches(authorization, expected):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or wrong bearer token (set DNSCTL_API_TOKEN or use the token file written by `dnsctl up`)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_token
