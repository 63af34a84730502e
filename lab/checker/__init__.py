"""`dnsctl check`: exhaustive model checking of the real enactor core against the real Route 53 engine.

The checker explores every interleaving of a small fleet (enactors x endpoints), the planner
publishing plans, lock losses and lease expiry, driving `enactor/protocol.py` unchanged and
applying every change batch with `services/route53/engine.py` unchanged. Modules:

- world.py: the bounds, the planner's plans and the transitions of the global state.
- symmetry.py: enactor renaming, so interchangeable enactors are not explored twice.
- invariants.py: what DNS serves, per record type (NoEmptyAnswer, ServedIsApplied,
  RollbackIntact, NoHalfTree), per step (NeverDeleteActive, Monotonic, LockExclusion,
  CoreRaised/EngineRaised); Progress is computed by explore.py on the whole graph.
- mutants.py: the mutant gate (named source edits of copies of the core and the engine).
- ablation.py: `dnsctl check --ablate`, each part of the guard switched off alone.
- explore.py: breadth-first search (shortest counterexamples) with partial-order reduction,
  Progress, seeded random walks.
- trace.py: a counterexample as numbered human-readable steps and as JSON.
- replay.py: a counterexample carried out step by step against a real Route 53 endpoint
  (the emulator) with boto3, then shown through the DNS data plane.
- cells.py: `dnsctl check --cells`: cells as Worlds in their own namespaces and the cell map,
  CellIsolation per transition and NoEmptyAnswer through each account's CNAME.
"""
