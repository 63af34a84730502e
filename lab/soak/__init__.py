"""The soak: `dnsctl soak` runs a Jepsen-style nemesis on a live stack while a checker watches.

nemesis.py is the fault and operator schedule, a pure function of the seed (so a run replays
from it); checker.py samples every endpoint over DNS and Route 53 and judges the history
(NoEmptyAnswer, the served version never decreasing, no lost fleet change, convergence);
run.py wires both to a stack (lab/race/stack.py's private one, or the one `dnsctl up` runs).
"""
