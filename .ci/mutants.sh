#!/usr/bin/env bash
# CI's mutant gate (lab/checker/mutants.py --ci): every named mutant of enactor/protocol.py and
# services/route53/engine.py must be killed by its cheapest known killer (the model checker at
# small bounds, or its named test); prints mutant -> killed by -> seconds and fails otherwise.
# Run after `make install` (it uses .venv). MUTANT_JOBS: mutants judged at once (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m lab.checker.mutants --ci --jobs "${MUTANT_JOBS:-2}"
