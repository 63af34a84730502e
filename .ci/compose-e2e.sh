#!/usr/bin/env bash
# docker compose end to end, for real: build the image, bring the whole stack up with
# docker-compose, check every service healthy, dig every endpoint, run the race with the guard on
# against the containers, then `down -v`. Prints the timings the release note quotes.
#
# Needs a Docker daemon (DOCKER_HOST; .ci/run starts a private one) and the project's .venv
# (`make install`). The daemon may have no bridge (dockerd --bridge=none, as in CI here), so the
# stack runs from the host-network variant of the compose file, rendered by the same generator as
# docker-compose.yml (`python -m services.compose_file --host-network`), on free loopback ports:
# a demo running on this machine is never in the way.
#
# The base image: debian:bookworm-slim when a registry answers; otherwise it is made here from
# Debian's packages by deploy/local-base-image.sh (same distribution, same python3).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
DNSCTL=.venv/bin/dnsctl
IMAGE=dnsctl:local
REGISTRY_BASE=debian:bookworm-slim
LOCAL_BASE=dnsctl-base:bookworm
HEALTHY_TIMEOUT_S=240
DIG_TIMEOUT_S=120

docker info >/dev/null 2>&1 || { echo "compose-e2e: no Docker daemon at ${DOCKER_HOST:-the default socket}" >&2; exit 1; }
[ -x "$DNSCTL" ] || { echo "compose-e2e: run \`make install\` first (no $DNSCTL)" >&2; exit 1; }

WORK="$(mktemp -d /tmp/dnsctl-compose-e2e.XXXXXX)"
PROJECT="dnsctl-e2e-$$"
COMPOSE=(docker-compose -p "$PROJECT" -f "$WORK/docker-compose.yml")
STARTED=0
LOG_PIDS=()
# The stack's token lives only in this shell's environment (compose passes it to the services).
DNSCTL_API_TOKEN="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')"
export DNSCTL_API_TOKEN

finish() {
  code=$?
  for pid in "${LOG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ "$STARTED" -eq 1 ]; then
    if [ "$code" -ne 0 ]; then
      echo "compose-e2e: failed; the services' last log lines:" >&2
      "${COMPOSE[@]}" logs --no-color --tail 30 >&2 || true
    fi
    "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit "$code"
}
trap finish EXIT

now() { date +%s.%N; }
since() { "$PY" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

t0=$(now)
if [ -n "${DNSCTL_BASE_IMAGE:-}" ]; then
  BASE="$DNSCTL_BASE_IMAGE"
elif timeout 60 docker pull -q "$REGISTRY_BASE" >/dev/null 2>&1; then
  BASE="$REGISTRY_BASE"
else
  echo "compose-e2e: no registry answers; making the base from Debian's packages"
  deploy/local-base-image.sh "$LOCAL_BASE"
  BASE="$LOCAL_BASE"
fi
echo "compose-e2e: base image $BASE ready after $(since "$t0")s"

t_build=$(now)
docker build -q --network host --build-arg BASE_IMAGE="$BASE" -t "$IMAGE" . >/dev/null
echo "compose-e2e: image $IMAGE built in $(since "$t_build")s ($(docker run --rm --network none --entrypoint python "$IMAGE" --version))"

"$PY" -m services.compose_file --host-network --free-ports --output "$WORK/docker-compose.yml" --stack-file "$WORK/state/stack.json" >/dev/null
read -r DNS_PORT PLANNER_URL < <("$PY" -c '
import json, sys
s = json.load(open(sys.argv[1]))["services"]
print(s["dns"]["port"], "http://127.0.0.1:%d" % s["planner"]["port"])' "$WORK/state/stack.json")

t_up=$(now)
STARTED=1
"${COMPOSE[@]}" up -d --no-build >/dev/null 2>"$WORK/up.log" || { cat "$WORK/up.log" >&2; exit 1; }

# Healthy: every long-running service's health check passes and the zones bootstrap exited 0.
unhealthy() {
  local bad=()
  for id in $("${COMPOSE[@]}" ps -q); do
    read -r name health status code < <(docker inspect --format '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.Status}} {{.State.ExitCode}}' "$id")
    if [ "$health" = none ]; then
      [ "$status" = exited ] && [ "$code" = 0 ] || bad+=("$name:$status")
    elif [ "$health" != healthy ]; then
      bad+=("$name:$health")
    fi
  done
  [ "$("${COMPOSE[@]}" ps -q | wc -l)" -eq 8 ] || bad+=("only $("${COMPOSE[@]}" ps -q | wc -l) of 8 containers")
  echo "${bad[*]:-}"
}
deadline=$(( $(date +%s) + HEALTHY_TIMEOUT_S ))
while bad="$(unhealthy)"; [ -n "$bad" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "compose-e2e: not healthy after ${HEALTHY_TIMEOUT_S}s: $bad" >&2; exit 1; }
  sleep 1
done
UP_TO_HEALTHY=$(since "$t_up")
echo "compose-e2e: compose up -> every service healthy in ${UP_TO_HEALTHY}s"

# Each container's output as a file where `dnsctl up` keeps its services' logs (stack.json names
# <state dir>/logs/<service>.log): the race reads its evidence (refused_stale, flips) from them.
mkdir -p "$WORK/state/logs"
for name in $("${COMPOSE[@]}" ps --services); do
  docker logs -f "$("${COMPOSE[@]}" ps -q "$name")" >"$WORK/state/logs/$name.log" 2>&1 &
  LOG_PIDS+=($!)
done

# Dig: every endpoint of the fleet answers an address for every record type it serves.
mapfile -t QUESTIONS < <(curl -sf "$PLANNER_URL/v1/fleet" | "$PY" -c '
import json, sys
for e in json.load(sys.stdin)["endpoints"]:
    for t in e["record_types"]:
        print(e["name"], t)')
[ "${#QUESTIONS[@]}" -gt 0 ] || { echo "compose-e2e: the planner lists no endpoints" >&2; exit 1; }
deadline=$(( $(date +%s) + DIG_TIMEOUT_S ))
for q in "${QUESTIONS[@]}"; do
  read -r name rtype <<<"$q"
  until answer="$(dig +short +time=1 +tries=1 -p "$DNS_PORT" @127.0.0.1 "$name" "$rtype" 2>/dev/null)" && [ -n "$answer" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "compose-e2e: $name $rtype has no answer after ${DIG_TIMEOUT_S}s" >&2; exit 1; }
    sleep 0.5
  done
  echo "compose-e2e: dig $name $rtype -> $(echo "$answer" | tr '\n' ' ')"
done
UP_TO_DIG=$(since "$t_up")
echo "compose-e2e: compose up -> dig answering for all ${#QUESTIONS[@]} endpoint/type pairs in ${UP_TO_DIG}s"

# The race of 20 October on the containers, guard on: the guard must hold (exit 0).
t_race=$(now)
"$DNSCTL" race --attach --state-dir "$WORK/state" --guard on
echo "compose-e2e: race --attach --guard on held in $(since "$t_race")s"

t_down=$(now)
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1
STARTED=0
echo "compose-e2e: down -v in $(since "$t_down")s"
echo "compose-e2e: passed: up -> healthy ${UP_TO_HEALTHY}s, up -> dig ${UP_TO_DIG}s, total $(since "$t0")s"
