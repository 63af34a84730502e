"""`dnsctl check`: exhaustive model checking of the real enactor core against the real Route 53 engine.

The checker explores every interleaving of a small fleet (enactors x endpoints), the planner
publishing plans, lock losses and lease expiry, driving `enactor/protocol.py` unchanged and
applying every change batch with `services/route53/engine.py` unchanged. Modules:

- world.py: the bounds, the planner's plans and the transitions of the global state.
- symmetry.py: enactor renaming, so interchangeable enactors are not explored twice.
- invariants.py: NoEmptyAnswer, NeverDeleteActive, Monotonic (per state / per batch); Progress
  is computed by explore.py on the whole graph.
- explore.py: breadth-first search (shortest counterexamples), Progress, seeded random walks.
- trace.py: a counterexample as numbered human-readable steps and as JSON.
- replay.py: a counterexample carried out step by step against a real Route 53 endpoint
  (the emulator) with boto3, then shown through the DNS data plane.
"""
