#!/usr/bin/env bash
# CI's short soak (about 2 minutes): `dnsctl soak` on a private stack on free ports with every
# fault kind for one minute, then convergence. The seed is the day of the year unless
# DNSCTL_SOAK_SEED is given, so CI walks through new schedules while any failure prints the
# command that replays it (`replay: dnsctl soak --minutes 1 --seed S`). Exit status is the soak's:
# 0 every property held, 1 one did not, 2 the soak could not run.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${DNSCTL_BIN:-.venv/bin}"
SEED="${DNSCTL_SOAK_SEED:-$(date -u +%j | sed 's/^0*//')}"
MINUTES="${DNSCTL_SOAK_MINUTES:-1}"
STATE_DIR="$(mktemp -d /tmp/dnsctl-ci-soak.XXXXXX)"

code=0
"$BIN/dnsctl" soak --minutes "$MINUTES" --seed "$SEED" --state-dir "$STATE_DIR" --converge-timeout 120 || code=$?
if [ "$code" -ne 0 ]; then
  echo "ci: soak failed (exit $code); its logs stay in $STATE_DIR/logs" >&2
else
  rm -rf "$STATE_DIR"
fi
exit "$code"
