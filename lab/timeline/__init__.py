"""`dnsctl timeline`: the logs of every process merged into one story that names the cause.

The package reads the JSON-lines logs that services/logs.py writes (events.py), decides which
event is the anomaly and which events are its effects (anomalies.py, pure rules), folds
repetitive noise into single rows (collapse.py), ties events of different processes together
(links.py), assembles all of that (build.py) and renders it for a terminal, for scripts and as a
self-contained HTML sequence diagram (render_*.py).
"""
