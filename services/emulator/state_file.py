"""Save the emulator's whole state on shutdown and restore it on start (`--state-file`).

The file holds moto's S3 and Route 53 backends (buckets, objects and their versions, hosted
zones with their ids) and the Route 53 store (record sets, change ids), so a restarted emulator
answers exactly as before. It is a pickle: moto's models are Python objects with no other
faithful serialisation. Load only files you wrote yourself. Writes are atomic (temp file, then
rename); a file that cannot be read leaves the emulator empty and says so in the log.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from services.emulator.route53_state import Route53Store
from services.logs import get_logger

FORMAT = "dnsctl-emulator-state/1"


def _backend_dicts() -> dict[str, Any]:
    from moto.route53.models import route53_backends
    from moto.s3.models import s3_backends

    return {"s3": s3_backends, "route53": route53_backends}


def save(path: Path, store: Route53Store, journal_seq: int = 0) -> None:
    """Write the whole state atomically; `journal_seq`: the last journal entry it includes."""
    moto_state: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for service, backends in _backend_dicts().items():
        for account_id, regions in backends.items():
            for region, backend in regions.items():
                moto_state.setdefault(service, {}).setdefault(account_id, {})[region] = dict(vars(backend))
    data = {"format": FORMAT, "moto": moto_state, "route53_store": store.snapshot(), "journal_seq": journal_seq}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())  # the journal is emptied after this returns: the file must be on disk
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # and so must the rename
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    zones = len(data["route53_store"]["zones"])
    get_logger(component="emulator").info("emulator_state_saved", path=str(path), zones=zones)


def load(path: Path, store: Route53Store) -> bool:
    """Restore from `path` if it exists; False (and a log event) when there is nothing usable."""
    log = get_logger(component="emulator")
    if not path.exists():
        log.info("emulator_state_absent", path=str(path))
        return False
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        backends = _backend_dicts()
        for service, accounts in data["moto"].items():
            for account_id, regions in accounts.items():
                for region, attrs in regions.items():
                    backends[service][account_id][region].__dict__.update(attrs)
        store.restore(data["route53_store"])
    except Exception as exc:  # noqa: BLE001 - a bad file must not stop the emulator
        log.error("emulator_state_unreadable", path=str(path), error=f"{type(exc).__name__}: {exc}"[:300])
        return False
    log.info("emulator_state_restored", path=str(path), zones=len(data["route53_store"]["zones"]))
    return True


def journal_seq(path: Path) -> int:
    """The last journal entry a state file includes (0 for files written before the journal)."""
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
        return int(data.get("journal_seq", 0)) if isinstance(data, dict) else 0
    except Exception:  # noqa: BLE001 - unreadable: load() has said why; replay the whole journal
        return 0
