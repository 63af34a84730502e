"""The strict local AWS emulator: moto's server for S3 and Route 53, with Route 53's real
change-batch semantics supplied by services.route53.engine (see moto_gaps for what is replaced).
"""
