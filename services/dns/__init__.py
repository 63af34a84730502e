"""The DNS data plane: what customers' resolvers would get from Route 53's authoritative servers.

snapshot.py keeps an in-memory copy of every hosted zone, answer.py computes Route 53's answer
to one question from it (pure), server.py speaks the wire protocol over UDP and TCP, cache.py is
a caching resolver in front of it (to show negative caching prolonging an outage), explain.py
tells the path behind an endpoint's answer in human terms (resolve_report.py builds
`dnsctl resolve`'s report from it), and loadgen.py sends many queries at once (the benchmark's
and the tests' load generator).
"""
