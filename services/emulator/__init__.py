"""The strict local AWS emulator: moto's server for S3 and Route 53, with Route 53's real
change-batch semantics from services.route53.engine.

- moto_gaps: every override of moto (and why), plus the WSGI wrapper (throttling, no 500s).
- route53_state: the record sets, change ids and propagation of every hosted zone.
- route53_wire: Route 53's XML for the record-set paths and errors.
- state_file: --state-file save on shutdown, restore on start.
- server: runs it all (`dnsctl emulator`).
"""
