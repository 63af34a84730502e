"""The mutant gate: faults planted in copies of the core and the engine, each of which a check must kill.

A mutant is a named source edit (search -> replace, each search text found exactly once) of
enactor/protocol.py or services/route53/engine.py. It is applied to a temporary copy of the
source tree, never to the real files, and judged in a subprocess run from that copy:
- killer "checker": `dnsctl check` at the default bounds (plus the mutant's own flags, e.g.
  `--start damaged`) must find a counterexample breaking an invariant the unmutated code does
  not break (the baseline: invariants the real code already breaks, such as a known defect, are
  passed as --ignore, so a known defect neither hides a kill nor fakes one);
- killer "tests/...::test_x": that pytest test must fail on the copy.
A mutant whose search text is not found fails the gate loudly ("mutant X no longer applies"),
so it is updated when the code changes, never silently skipped. A mutant no check can kill
(equivalent within the model) carries its reason and is expected to survive.

    python -m lab.checker.mutants [--only a,b] [--list] [--jobs N] [--ci]

prints the table mutant -> killed by -> seconds; exit 0 when every mutant is killed (or is a
declared equivalent that survived), 1 otherwise.

--ci is the form that fits CI's budget (.ci/mutants.sh): every mutant is judged by its cheapest
known killer, the checker at the small bounds CI_CHECK_ARGS (the same as tests/checker's: 2
enactors, plans 1..3, keep_plans 1, no lost reply; the guarded core exhausts them in seconds,
where the default bounds take minutes) or its named test, each with a time limit (CI_TIMEOUT_S).
The baselines are computed at those bounds too, so a kill still means "breaks an invariant the
real code keeps". The default bounds remain the full gate. `dnsctl check --ablate` uses the core mutants
named in ABLATIONS in-process (ablation.py).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = "enactor/protocol.py"
ENGINE = "services/route53/engine.py"
CHECKER = "checker"
COPY_IGNORE = shutil.ignore_patterns(".venv", ".git", "__pycache__", ".pytest_cache", "node_modules", "*.pyc", ".hypothesis")
TIMEOUT_S = 900
# --ci: the checker's bounds and a time limit per mutant (see the module doc).
CI_CHECK_ARGS = ("--enactors", "2", "--plans", "3", "--keep-plans", "1", "--lost-replies", "0")
CI_TIMEOUT_S = 300


class MutantStale(AssertionError):
    """A mutant's search text is not in the file (exactly once) any more."""


@dataclass(frozen=True, slots=True)
class Mutant:
    name: str
    file: str  # CORE or ENGINE
    edits: tuple[tuple[str, str], ...]
    fault: str  # what the planted fault is, in words
    killer: str = CHECKER  # CHECKER or a pytest node id
    check_args: tuple[str, ...] = ()  # extra `dnsctl check` flags
    equivalent: str | None = None  # why no check can kill it (it is expected to survive)


def mutated_source(m: Mutant, source: str) -> str:
    for old, new in m.edits:
        count = source.count(old)
        if count != 1:
            raise MutantStale(f"mutant {m.name} no longer applies: its search text occurs {count} times in {m.file}, not once: {old!r}")
        source = source.replace(old, new)
    return source


def mutant_module(m: Mutant) -> types.ModuleType:
    """A mutant as a separate module object, in-process (the real module is never touched)."""
    source = mutated_source(m, (ROOT / m.file).read_text())
    module_name = m.file.removesuffix(".py").replace("/", ".") + f"_mutant_{m.name}"
    module = types.ModuleType(module_name)
    module.__file__ = f"<{module_name}>"
    sys.modules[module_name] = module  # dataclasses resolve annotations through sys.modules
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def core_module(m: Mutant) -> types.ModuleType:
    """A core mutant, to pass to World(bounds, core)."""
    if m.file != CORE:
        raise ValueError(f"mutant {m.name} mutates {m.file}, not the core: run it through the gate")
    return mutant_module(m)


_DELETE_APPLIED = 'changes += ((Change("DELETE", st.applied),) if st.applied is not None else ()) + (Change("CREATE", planned.cas),)'
_EXPIRY = 'return "expired" if value.expires <= now else "held"'

MUTANTS: tuple[Mutant, ...] = (
    # --- the faults of issue 12's table --------------------------------------------------------
    Mutant("cleanup_deletes_rollback", CORE, (
        ("referenced = {t for t in (*zone.root_targets().values(), *zone.rollback_targets().values()) if t}",
         "referenced = {t for t in zone.root_targets().values() if t}"),
        ("protected = referenced | {applied.tree_id}", "protected = referenced"),
    ), "guarded clean-up may delete the rollback target"),
    Mutant("lock_taken_before_expiry", CORE, (
        (_EXPIRY, 'return "expired" if value.expires <= now + s.lock_ttl_s else "held"'),
    ), "a lock held by another is taken over a TTL before it expires"),
    Mutant("keep_plans_off_by_one", CORE, (
        ("threshold = applied.version - s.keep_plans", "threshold = applied.version - s.keep_plans + 1"),
    ), "guarded clean-up keeps one plan fewer than keep_plans",
        killer="tests/enactor/test_protocol.py::test_guarded_cleanup_keeps_active_rollback_and_recent_trees"),
    Mutant("heal_rollback_to_missing", CORE, (
        ("        if not s.version_guard:\n            # October's code", "        if not s.version_guard or heal:\n            # October's code"),
    ), "the heal points the rollback at the missing tree (where the dangling root points)", check_args=("--start", "damaged")),
    Mutant("engine_delete_ignores_values", ENGINE, (
        ("    if not same_record_set(current, record):\n        return f\"Tried to delete", "    if False:\n        return f\"Tried to delete"),
    ), "the engine's DELETE matches by name and type only, ignoring values"),
    Mutant("engine_partial_batch", ENGINE, (
        ("    if messages:\n        raise InvalidChangeBatch(messages)\n    new_zone", "    if messages and not draft.records:\n        raise InvalidChangeBatch(messages)\n    new_zone"),
    ), "the engine applies the changes of a batch that passed and drops the others"),
    Mutant("engine_create_overwrites", ENGINE, (
        ('if action == "CREATE" and record.key in draft.records:', 'if action == "CREATE" and False:'),
    ), "the engine's CREATE overwrites an existing record set"),
    Mutant("flip_without_applied_cas", CORE, (
        (_DELETE_APPLIED, 'changes += (Change("UPSERT", planned.cas),)'),
    ), "the flip writes _applied without the compare-and-swap",
        equivalent="the lock preamble (DELETE of the exact lock value, whose counter never repeats) already makes every "
                   "batch a compare-and-swap on the whole zone, so within the model the _applied CAS never decides alone"),
    # --- more of the guard and the lock ----------------------------------------------------
    Mutant("lock_preamble_skipped", CORE, (
        ("    changes = ((Change(\"DELETE\", st.lock),) if st.lock is not None else ()) + (Change(\"CREATE\", lock),)\n",
         "    changes = () if st.acquired else ((Change(\"DELETE\", st.lock),) if st.lock is not None else ()) + (Change(\"CREATE\", lock),)\n"),
    ), "batches after the first of a unit carry no lock preamble"),
    Mutant("freshness_checked_once_guarded", CORE, (
        ("    else:\n        # Heal a root that dangles",
         "    elif not st.checked:\n        st = replace(st, checked=True)\n        # Heal a root that dangles"),
    ), "guarded mode checks the plan's freshness once, at the first listing, as legacy does"),
    Mutant("expiry_off_by_one", CORE, (
        (_EXPIRY, 'return "expired" if value.expires < now else "held"'),
    ), "a lease expiring exactly now counts as held (so a released lock is never free)",
        killer="tests/enactor/test_protocol.py::test_flip_and_cleanup_are_separate_acquisitions_and_another_enactor_can_flip_between"),
    Mutant("heal_without_rollback_check", CORE, (
        ("    if not intact:\n        return {}\n", "    if not intact or heal:\n        return {}\n"),
    ), "the heal leaves the rollback as it is instead of checking where it points",
        equivalent="in guarded mode the rollback record only ever names a complete tree (flips point it at the active "
                   "tree, clean-up protects it), so leaving it as it is during a heal is as safe as re-pointing it"),
    Mutant("no_heal", CORE, (
        ("heal = zone.dangling or unserved", "heal = False"),
    ), "a dangling root is never healed when the plan in hand is not newer", check_args=("--start", "damaged")),
    Mutant("flip_skips_freshness", CORE, (
        ("if not (v >= applied if heal else v > applied):", "if False:"),
    ), "guarded mode flips any plan, older ones included"),
    Mutant("cleanup_deletes_active", CORE, (
        ("protected = referenced | {applied.tree_id}", "protected = set()"),
        ("threshold = applied.version - s.keep_plans", "threshold = applied.version + 1"),
    ), "guarded clean-up deletes every tree, the active one included"),
    Mutant("flip_first_type_only", CORE, (
        ("    for rt in types:\n        changes.append(Change(\"UPSERT\", RecordSet(layout.root_name",
         "    for rt in types[:1]:\n        changes.append(Change(\"UPSERT\", RecordSet(layout.root_name"),
    ), "the flip moves the root of the first record type only"),
    Mutant("tree_without_metadata", CORE, (
        ("    return (*records, meta_record)", "    return tuple(records)"),
    ), "trees are built without their metadata record (never complete)"),
    Mutant("release_keeps_lease", CORE, (
        ("int(now) if last else int(now) + s.lock_ttl_s", "int(now) + s.lock_ttl_s"),
    ), "the last batch of a unit does not release the lock (the lease runs on)",
        killer="tests/enactor/test_protocol.py::test_first_plan_builds_a_complete_tree_then_flips_in_a_separate_batch"),
    Mutant("quota_counts_tree_only", CORE, (
        ("grows = len(missing) + _heads_growth(s, zone, flip)", "grows = len(missing)"),
        ('sum(1 for c in missing if c.action == "CREATE") + _heads_growth(s, zone, flip) - quota',
         'sum(1 for c in missing if c.action == "CREATE") - quota'),
    ), "the zone-quota check counts the tree's nodes only, not the lock, the flip's new roots and rollbacks and _applied",
        check_args=("--zone-quota", "24")),
    Mutant("refusal_keeps_lease", CORE, (
        ("    if not (s.version_guard and st.salvage and lock_verdict(", "    if True or not (s.version_guard and st.salvage and lock_verdict("),
    ), "a unit given up after its build took the lock (a refused plan) leaves its lease held",
        check_args=("--zone-quota", "20")),
    Mutant("trim_keeps_dropped_rollback", CORE, (
        ("if c.record.alias and c.action != \"DELETE\"}", "if c.record.alias}"),
    ), "making room, the trees of the roots and rollbacks the flip deletes (a dropped type) are kept too",
        check_args=("--zone-quota", "24")),
    # --- the engine ---------------------------------------------------------------------------
    Mutant("engine_upsert_ignores_set_identifier", ENGINE, (
        ("    draft.put(record)\n    return None\n\n\ndef _check_alias_target",
         "    if action == \"UPSERT\" and sid is not None:\n        for other in [s for s in draft.types_at(name).get(rtype, ()) if s != sid]:\n"
         "            draft.remove((name, rtype, other))\n    draft.put(record)\n    return None\n\n\ndef _check_alias_target"),
    ), "an UPSERT of a weighted member replaces every member of its name and type",
        killer="tests/route53/test_engine.py::test_upsert_replaces_exactly_one_record_set"),
    Mutant("engine_weighted_limit_unenforced", ENGINE, (
        ("if sid not in siblings and len(siblings) >= limits.max_weighted_per_name_type:", "if False:"),
    ), "the engine allows more than 100 weighted sets per name and type",
        killer="tests/route53/test_engine.py::test_at_most_100_weighted_sets_per_name_and_type"),
    Mutant("engine_alias_target_unchecked", ENGINE, (
        ("    if not draft.types_at(alias.dns_name).get(record.type):\n", "    if False:\n"),
    ), "the engine accepts an alias to a missing target",
        killer="tests/route53/test_engine.py::test_alias_target_must_exist"),
)

# Parts of the guard for `dnsctl check --ablate`: each switched off alone (a core mutant).
ABLATIONS: tuple[tuple[str, str], ...] = (
    ("freshness re-check after each listing", "freshness_checked_once_guarded"),
    ("the _applied compare-and-swap", "flip_without_applied_cas"),
    ("clean-up protection (active, rollback, applied trees)", "cleanup_unprotected"),
    ("the heal of a dangling root", "no_heal"),
    ("the lock counter", "lock_counter_constant"),
)
ABLATION_MUTANTS: tuple[Mutant, ...] = (
    Mutant("cleanup_unprotected", CORE, (("protected = referenced | {applied.tree_id}", "protected = set()"),),
           "guarded clean-up without its protection of the trees in use"),
    Mutant("lock_counter_constant", CORE, (("counter = (seen.counter if seen else 0) + 1", "counter = 1"),),
           "every lock value has counter 1 (values repeat)"),
)


def by_name(name: str) -> Mutant:
    for m in MUTANTS + ABLATION_MUTANTS:
        if m.name == name:
            return m
    raise KeyError(f"no mutant named {name!r}")


# --- the gate ---------------------------------------------------------------------------------


@dataclass
class Verdict:
    mutant: Mutant
    killed: bool
    by: str  # "checker: Invariant" / "test: node id" / "survived" / the failure
    seconds: float
    ok: bool  # the gate's view: killed, or a declared equivalent that survived


def baseline(check_args: tuple[str, ...], progress=None) -> tuple[str, ...]:
    """Invariants the unmutated code breaks at the default bounds with `check_args` (a known
    defect): found by exhausting the space, each found invariant ignored in the next run."""
    from lab.checker.explore import explore
    from lab.checker.world import Bounds, World

    kw = {}
    args = list(check_args)
    while args:
        flag, value = args.pop(0), args.pop(0)
        kw[flag.lstrip("-").replace("-", "_")] = int(value) if value.isdigit() else (value == "on" if value in ("on", "off") else value)
    ignore: list[str] = []
    while True:
        result = explore(World(Bounds(**kw), ignore=ignore), check_progress=True)
        if result.counterexample is None:
            return tuple(ignore)
        ignore += [i for i in result.counterexample.invariants if i not in ignore]
        if progress:
            progress(f"baseline {' '.join(check_args) or '(default bounds)'}: the unmutated code breaks {', '.join(ignore)}")


_FAILED = re.compile(r"^FAILED (\S+)", re.M)


def run_one(m: Mutant, ignore: tuple[str, ...], extra: tuple[str, ...] = (), python: str = sys.executable,
            timeout_s: float = TIMEOUT_S) -> Verdict:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{m.name}-") as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(ROOT, copy, ignore=COPY_IGNORE, symlinks=True)
        target = copy / m.file
        try:
            target.write_text(mutated_source(m, target.read_text()))
        except MutantStale as exc:
            return Verdict(m, False, f"FAILED: {exc}", time.perf_counter() - started, False)
        env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
        if m.killer == CHECKER:
            cmd = [python, "-m", "cli.main", "check", *extra, *m.check_args]
            if ignore:
                cmd += ["--ignore", ",".join(ignore)]
        else:
            cmd = [python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", m.killer]
        try:
            run = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return Verdict(m, False, f"survived (no verdict in {timeout_s:.0f} s)", time.perf_counter() - started, m.equivalent is not None)
    seconds = time.perf_counter() - started
    if m.killer == CHECKER:
        found = re.search(r"Counterexample \((?:safety|progress): ([^)]*)\)", run.stdout)
        if run.returncode == 1 and found:
            by = f"checker: {found.group(1)}"
            killed = True
        elif run.returncode == 0:
            by, killed = "survived", False
        else:
            tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
            return Verdict(m, False, f"FAILED: dnsctl check exited {run.returncode}: {' | '.join(tail)}", seconds, False)
    else:
        killed = run.returncode != 0
        failed = _FAILED.search(run.stdout)  # the test that failed, when the killer is a whole file
        by = f"test: {(failed.group(1) if failed else m.killer).split('::')[-1]}" if killed else "survived"
        if run.returncode not in (0, 1):
            by += f" (pytest exit {run.returncode})"
    ok = killed if m.equivalent is None else not killed
    return Verdict(m, killed, by, seconds, ok)


def gate(names: list[str] | None = None, jobs: int = 1, out=print, extra: tuple[str, ...] = (), run_equivalent: bool = False,
         known: tuple[str, ...] | None = None, timeout_s: float = TIMEOUT_S) -> bool:
    """Run the gate; `extra`: `dnsctl check` flags for every checker run (smaller bounds: --ci,
    tests). Declared equivalents are listed, and run only when asked (or named): surviving costs
    an exhaustive run."""
    chosen = [m for m in MUTANTS if (names is None and (run_equivalent or m.equivalent is None)) or (names and m.name in names)]
    skipped = [m for m in MUTANTS if names is None and m.equivalent is not None and not run_equivalent]
    if names is not None:
        unknown = set(names) - {m.name for m in MUTANTS}
        if unknown:
            raise KeyError(f"no mutant named {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    ignores: dict[tuple[str, ...], tuple[str, ...]] = {}
    for args in dict.fromkeys(m.check_args for m in chosen if m.killer == CHECKER):
        # `known`: the caller vouches for the baseline (it costs one exhaustive run per set of flags).
        ignores[args] = known if known is not None else baseline(extra + args, progress=out)
    out(f"baselines computed in {time.perf_counter() - started:.1f} s: "
        + "; ".join(f"{' '.join(a) or 'default'} -> ignore {', '.join(i) or 'nothing'}" for a, i in ignores.items()))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        verdicts = list(pool.map(lambda m: run_one(m, ignores.get(m.check_args, ()), extra, timeout_s=timeout_s), chosen))
    width = max(len(m.name) for m in chosen)
    out(f"{'mutant':{width}}  {'file':26}  {'killed by':58}  seconds")
    for v in verdicts:
        mark = "" if v.ok else "   <-- GATE FAILS"
        out(f"{v.mutant.name:{width}}  {v.mutant.file:26}  {v.by[:58]:58}  {v.seconds:7.1f}{mark}")
    for v in verdicts:
        if v.mutant.equivalent is not None:
            status = "survived as expected" if not v.killed else "was KILLED: it is not equivalent, make it a plain mutant"
            out(f"equivalent: {v.mutant.name} ({status}): {v.mutant.equivalent}")
        if v.by.startswith("FAILED"):
            out(f"{v.mutant.name}: {v.by}")
    for m in skipped:
        out(f"equivalent: {m.name} (not run; --run-equivalent runs it): {m.equivalent}")
    ok = all(v.ok for v in verdicts)
    killed = sum(v.killed for v in verdicts)
    out(f"{killed} of {len(verdicts)} mutants run killed, {sum(m.equivalent is not None for m in chosen + skipped)} declared equivalent; "
        f"gate {'passes' if ok else 'FAILS'} in {time.perf_counter() - started:.1f} s")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.checker.mutants", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated mutant names")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--run-equivalent", action="store_true", help="also run the declared equivalent mutants")
    parser.add_argument("--known", default=None,
                        help="comma-separated invariants the unmutated code is known to break (skips computing the baseline)")
    parser.add_argument("--check-args", default="", help="extra `dnsctl check` flags for every checker run (default: none, the default bounds)")
    parser.add_argument("--ci", action="store_true",
                        help=f"CI's form: the checker at {' '.join(CI_CHECK_ARGS)}, at most {CI_TIMEOUT_S} s a mutant")
    args = parser.parse_args(argv)
    if args.ci and args.check_args:
        print("error: --ci sets the checker's bounds; leave out --check-args", file=sys.stderr)
        return 2
    extra = CI_CHECK_ARGS if args.ci else tuple(args.check_args.split())
    if args.list:
        for m in MUTANTS:
            print(f"{m.name}: {m.file}: {m.fault}; killer {m.killer}" + (f"; EQUIVALENT: {m.equivalent}" if m.equivalent else ""))
        return 0
    try:
        ok = gate(args.only.split(",") if args.only else None, args.jobs, out=lambda s: print(s, flush=True),
                  extra=extra, run_equivalent=args.run_equivalent,
                  known=None if args.known is None else tuple(x for x in args.known.split(",") if x),
                  timeout_s=CI_TIMEOUT_S if args.ci else TIMEOUT_S)
    except KeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
