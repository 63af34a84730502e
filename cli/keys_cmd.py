"""`dnsctl keys init`: make the plan signing key pair where the planner and the enactors read it.

`dnsctl up` makes its pair in its state directory itself (services/plan/signing.py,
`generate_key_pair`). docker compose runs this command as its one-shot `keys` service before the
planner starts: the private key goes into a volume only the planner mounts, a copy of the public
key into a volume the enactors mount (read-only both). So no private key is ever in the
repository or the image, an enactor never sees it, and the pair lives as long as the project's
volumes: kept across `docker compose up` (plans signed earlier still verify), gone with `down -v`.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

keys_app = typer.Typer(help="The plan signing key pair (Ed25519).", no_args_is_help=True)


@keys_app.command("init")
def init(
    private_dir: Path = typer.Option(..., help="Where the pair goes (the private key, mode 600): the planner's volume."),
    public_dir: Path = typer.Option(None, help="Where a copy of the public key goes too: the enactors' volume.", show_default=False),
) -> None:
    """Make sure PRIVATE_DIR holds a key pair (an existing one is kept) and PUBLIC_DIR its public key."""
    from services.plan.signing import PUBLIC_KEY_FILE, PlanSigner, SigningKeyError, generate_key_pair

    try:
        private, public = generate_key_pair(private_dir)
        key_id = PlanSigner.from_file(private).key_id
        typer.echo(f"plan signing key {key_id}: private key {private}")
        if public_dir is not None and public_dir.resolve() != private_dir.resolve():
            public_dir.mkdir(parents=True, exist_ok=True)
            copy = public_dir / PUBLIC_KEY_FILE
            staged = copy.with_name(copy.name + ".new")
            staged.write_bytes(public.read_bytes())
            staged.chmod(0o644)  # a public key: readable by anyone
            os.replace(staged, copy)  # an enactor starting now reads the old copy or the new, never half of one
            typer.echo(f"plan signing key {key_id}: public key {copy}")
    except (SigningKeyError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
