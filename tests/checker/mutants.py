"""Faults planted in copies of the guarded protocol core, for checking that the checker can fail.

Each mutant is enactor/protocol.py's source with targeted textual edits; every edit must match
exactly once (so a change to the core cannot silently turn a mutant into the original), and the
result is imported as a separate module: enactor.protocol itself is never touched.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

from enactor import protocol

Edit = tuple[str, str]


def mutant(name: str, edits: list[Edit]) -> types.ModuleType:
    source = Path(protocol.__file__).read_text()
    for old, new in edits:
        count = source.count(old)
        if count != 1:
            raise AssertionError(f"mutant {name}: the text to replace occurs {count} times, not once: {old!r}")
        source = source.replace(old, new)
    if source == Path(protocol.__file__).read_text():
        raise AssertionError(f"mutant {name} is the original core")
    module_name = f"enactor.protocol_mutant_{name}"
    module = types.ModuleType(module_name)
    module.__file__ = f"<{module_name}>"
    # dataclasses resolve string annotations through sys.modules[cls.__module__].
    sys.modules[module_name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


# The guard's compare-and-swap on _applied: the flip compares the applied version it listed
# (after every listing) and its batch swaps _applied only if nobody changed it since.
NO_COMPARE: list[Edit] = [
    ("if not (v >= applied if heal else v > applied):", "if False:"),
]
NO_SWAP_CONDITION: list[Edit] = [
    (
        "changes += ((Change(\"DELETE\", st.applied),) if st.applied is not None else ()) + (Change(\"CREATE\", planned.cas),)",
        "changes += (Change(\"UPSERT\", planned.cas),)",
    ),
]
SKIP_CAS = NO_COMPARE + NO_SWAP_CONDITION

# Clean-up's protection of the trees in use (active, rollback, applied).
NO_PROTECTION: list[Edit] = [("protected = referenced | {applied.tree_id}", "protected = set()")]
CLEANUP_DELETES_ACTIVE = NO_PROTECTION + [
    ("threshold = applied.version - s.keep_plans", "threshold = applied.version + 1"),
]

# Healing a dangling root (installing the plan in hand even when it is not newer).
NO_HEALING: list[Edit] = [("heal = zone.dangling", "heal = False")]
