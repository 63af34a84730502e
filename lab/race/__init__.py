"""The race lab: `dnsctl race` replays 20 October 2025 on a live stack of real processes.

stack.py starts a private stack on free ports (or attaches to the one `dnsctl up` runs),
control.py is the driver's handle on it (chaos, plans, statuses, Route 53, DNS, alarms),
scenario.py is the scripted sequence, evidence.py collects what the logs, the prober and `dig`
say afterwards, and verdict.py turns that into the verdict the command prints; trace.py asks
the model checker for the shortest October race and saves it for the console's trace viewer.
"""
