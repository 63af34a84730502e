"""The race lab: tools that study the running system rather than run it.

- race/: the scripted replay of 20 October 2025 on a live stack, and its verdict;
- checker/: the model checker that explores the real enactor core against the real Route 53 engine;
- timeline/: every process's logs merged into one timeline that points at the anomaly;
- repair.py: heals an endpoint on Route 53 alone, speaking the enactor's own lock protocol.
"""
