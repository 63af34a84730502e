#!/usr/bin/env bash
# docker compose end to end, for real: build the image, bring the whole stack up with
# docker-compose (the regional system, two cells and the cell map, as `dnsctl up --cells 2
# --accounts 6`), check every service healthy, plans signed (the `keys` one-shot's pair, the
# private key in the planners' volume only), dig every endpoint of the regional system and of
# each cell, dig every account's name through the caching resolver (the CNAME to its cell's name
# or the legacy one, followed to addresses), run the race with the guard on against the
# containers, check the console's timeline shows the services' events (the `logs` volume) and
# its view groups the endpoints and accounts by cell, then `down -v`. Prints the timings the
# release note quotes, each step's own.
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
# 26 containers (the cells and the cell map beside the regional system); on the vfs driver each
# container's creation copies the whole image, so a busy 2-core machine takes minutes.
HEALTHY_TIMEOUT_S=900
DIG_TIMEOUT_S=120

docker info >/dev/null 2>&1 || { echo "compose-e2e: no Docker daemon at ${DOCKER_HOST:-the default socket}" >&2; exit 1; }
[ -x "$DNSCTL" ] || { echo "compose-e2e: run \`make install\` first (no $DNSCTL)" >&2; exit 1; }

WORK="$(mktemp -d /tmp/dnsctl-compose-e2e.XXXXXX)"
PROJECT="dnsctl-e2e-$$"
COMPOSE=(docker-compose -p "$PROJECT" -f "$WORK/docker-compose.yml")
# Creating a container on the vfs driver copies the whole image: on a busy machine one call takes
# longer than docker-compose's default 60 s wait for the daemon's answer.
export COMPOSE_HTTP_TIMEOUT="${COMPOSE_HTTP_TIMEOUT:-600}"
STARTED=0
# The stack's token lives only in this shell's environment (compose passes it to the services).
DNSCTL_API_TOKEN="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')"
export DNSCTL_API_TOKEN
# This run's id: every service's events carry it (DNSCTL_RUN_ID), as under `dnsctl up`.
DNSCTL_RUN_ID="$("$PY" -c 'from services.stack_file import new_run_id; print(new_run_id())')"
export DNSCTL_RUN_ID

finish() {
  code=$?
  if [ "$STARTED" -eq 1 ]; then
    if [ "$code" -ne 0 ]; then
      echo "compose-e2e: failed; the containers' output and the services' last events:" >&2
      "${COMPOSE[@]}" ps >&2 || true
      "${COMPOSE[@]}" logs --no-color --tail 30 >&2 || true
      for f in "$WORK"/state/logs/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 15 "$f" >&2; }; done
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

# The image, with BuildKit where a docker CLI here has it: the legacy builder makes a container for
# every step, metadata ones too, and on the vfs driver each is a full copy of the image made and
# deleted again. Debian's docker.io CLI (20.10) has BuildKit built in (DOCKER_BUILDKIT=1); a CLI
# from 23 on needs the buildx plugin for it. Failing both, the legacy builder builds it.
build_image() {
  local cli major
  for cli in docker /usr/bin/docker; do
    command -v "$cli" >/dev/null 2>&1 || continue
    if "$cli" buildx version >/dev/null 2>&1; then
      BUILDER="BuildKit ($cli buildx)"
      "$cli" buildx build --load -q --network host --build-arg BASE_IMAGE="$BASE" -t "$IMAGE" . >/dev/null
      return
    fi
    major="$("$cli" version -f '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)"
    if [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null; then
      BUILDER="BuildKit ($cli $("$cli" version -f '{{.Client.Version}}' 2>/dev/null))"
      DOCKER_BUILDKIT=1 "$cli" build -q --network host --build-arg BASE_IMAGE="$BASE" -t "$IMAGE" . >/dev/null
      return
    fi
  done
  BUILDER="the legacy builder"
  DOCKER_BUILDKIT=0 docker build -q --network host --build-arg BASE_IMAGE="$BASE" -t "$IMAGE" . >/dev/null
}
t_build=$(now)
build_image
BUILD_S=$(since "$t_build")
SIZE_MB=$(( $(docker image inspect -f '{{.Size}}' "$IMAGE") / 1000000 ))
echo "compose-e2e: image $IMAGE built by $BUILDER in ${BUILD_S}s (${SIZE_MB} MB)"

# The stack's description names this script as its owner: `race --attach` takes it while we run.
"$PY" -m services.compose_file --host-network --free-ports --output "$WORK/docker-compose.yml" \
  --state-dir "$WORK/state" --run-id "$DNSCTL_RUN_ID" --owner-pid $$ >/dev/null
read -r DNS_PORT RESOLVER_PORT PLANNER_URL CONSOLE_URL CELLMAP_URL < <("$PY" -c '
import json, sys
s = json.load(open(sys.argv[1]))["services"]
print(s["dns"]["port"], s["resolver"]["port"], s["planner"]["url"], s["console"]["url"], s["cellmap-planner"]["url"])' "$WORK/state/stack.json")
# Every planner whose fleet is dug (the regional one and each cell's), every enactor (the
# regional trio, each cell's, the cell map's), and how many containers the file runs: all from
# the rendered file, so a cell more in the stack table is checked without an edit here.
mapfile -t PLANNER_URLS < <("$PY" -c '
import json, re, sys
s = json.load(open(sys.argv[1]))["services"]
for name in sorted(s):
    if re.fullmatch(r"(cell-[0-9]+-)?planner", name):
        print(s[name]["url"])' "$WORK/state/stack.json")
mapfile -t ENACTOR_NAMES < <("$PY" -c '
import sys, yaml
for name in yaml.safe_load(open(sys.argv[1]))["services"]:
    if name.rsplit("-", 2)[-2:-1] == ["enactor"]:
        print(name)' "$WORK/docker-compose.yml")
CONTAINERS="$("$PY" -c 'import sys, yaml; print(len(yaml.safe_load(open(sys.argv[1]))["services"]))' "$WORK/docker-compose.yml")"
echo "compose-e2e: $CONTAINERS services (${#PLANNER_URLS[@]} planners with endpoints, ${#ENACTOR_NAMES[@]} enactors)"

t_up=$(now)
STARTED=1
"${COMPOSE[@]}" up -d --no-build >/dev/null 2>"$WORK/up.log" || { cat "$WORK/up.log" >&2; exit 1; }

# Healthy: every long-running service's health check passes and every one-shot (keys, the zones ones) exited 0.
unhealthy() {
  # One `docker-compose ps` and one `docker inspect` for every container a round: with 26 of them,
  # a call per container each second was load of its own on a 2-core machine.
  local bad=() ids
  mapfile -t ids < <("${COMPOSE[@]}" ps -q)
  [ "${#ids[@]}" -eq "$CONTAINERS" ] || bad+=("only ${#ids[@]} of $CONTAINERS containers")
  if [ "${#ids[@]}" -gt 0 ]; then
    while read -r name health status code; do
      if [ "$health" = none ]; then
        [ "$status" = exited ] && [ "$code" = 0 ] || bad+=("$name:$status")
      elif [ "$health" != healthy ]; then
        bad+=("$name:$health")
      fi
    done < <(docker inspect --format '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.Status}} {{.State.ExitCode}}' "${ids[@]}")
  fi
  echo "${bad[*]:-}"
}
deadline=$(( $(date +%s) + HEALTHY_TIMEOUT_S ))
while bad="$(unhealthy)"; [ -n "$bad" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "compose-e2e: not healthy after ${HEALTHY_TIMEOUT_S}s: $bad" >&2; exit 1; }
  sleep 2
done
UP_TO_HEALTHY=$(since "$t_up")
echo "compose-e2e: compose up -> every service healthy (all $CONTAINERS) in ${UP_TO_HEALTHY}s"

# The services' event logs are the `logs` volume's files (the console follows them there); the
# stack's description names them under <state dir>/logs, as `dnsctl up`'s does: link that folder to
# the volume, so the race reads its evidence (refused_stale, flips) where it reads it under `dnsctl up`.
ln -s "$(docker volume inspect -f '{{.Mountpoint}}' "${PROJECT}_logs")" "$WORK/state/logs"

# Signed plans: the planner signs with the key the `keys` one-shot made, every enactor verifies
# with its public half, and no enactor container can read the private key.
KEY_ID="$(docker logs "$("${COMPOSE[@]}" ps -q keys)" 2>&1 | sed -n 's/^plan signing key \([0-9a-f]*\): private key.*/\1/p' | head -n 1)"
[ -n "$KEY_ID" ] || { echo "compose-e2e: the keys one-shot printed no key id" >&2; exit 1; }
"$PY" - "$WORK/state/logs" "$KEY_ID" "${ENACTOR_NAMES[@]}" <<'CHECK'
import json, pathlib, re, sys
logs, key, enactors = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
def started(name, event):
    for line in (logs / f"{name}.log").read_text().splitlines():
        e = json.loads(line)
        if e.get("event") == event:
            return e["plan_key"]
    raise SystemExit(f"compose-e2e: no {event} in {name}.log")
planners = sorted(p.stem for p in logs.glob("*planner.log"))
found = {n: started(n, "cellmap_planner_started" if n == "cellmap-planner" else "planner_started") for n in planners}
found |= {n: started(n, "cellmap_enactor_started" if n.startswith("cellmap-") else "enactor_started") for n in enactors}
bad = {n: k for n, k in found.items() if k != key}
if bad:
    raise SystemExit(f"compose-e2e: plans not signed with key {key}: {bad}")
print(f"compose-e2e: plans signed with key {key}: {len(planners)} planners sign ({', '.join(planners)}), {len(enactors)} enactors verify")
CHECK
# The same events reach `docker compose logs` (DNSCTL_LOG_STDOUT=1): an operator without the
# console reads them there.
for name in enactor-a planner; do
  shown="$("${COMPOSE[@]}" logs --no-color "$name" 2>&1 || true)"  # whole, then searched: no SIGPIPE under pipefail
  grep -qF "\"event\": \"${name%-a}_started\"" <<<"$shown" \
    || { echo "compose-e2e: docker compose logs $name shows no ${name%-a}_started event" >&2; exit 1; }
done
echo "compose-e2e: docker compose logs shows the JSON events (enactor-a, planner)"
for name in "${ENACTOR_NAMES[@]}"; do
  if docker exec "$("${COMPOSE[@]}" ps -q "$name")" test -e /var/lib/dnsctl/plan-key/plan-signing.key; then
    echo "compose-e2e: $name can see the private key" >&2; exit 1
  fi
done

# Dig: every endpoint of every fleet (the regional system's, each cell's) answers an address for
# every record type it serves.
QUESTIONS=()
for url in "${PLANNER_URLS[@]}"; do
  mapfile -t -O "${#QUESTIONS[@]}" QUESTIONS < <(curl -sf "$url/v1/fleet" | "$PY" -c '
import json, sys
for e in json.load(sys.stdin)["endpoints"]:
    for t in e["record_types"]:
        print(e["name"], t)')
done
[ "${#QUESTIONS[@]}" -gt 0 ] || { echo "compose-e2e: the planner lists no endpoints" >&2; exit 1; }
deadline=$(( $(date +%s) + DIG_TIMEOUT_S ))
for q in "${QUESTIONS[@]}"; do
  read -r name rtype <<<"$q"
  until answer="$(dig +short +time=1 +tries=1 -p "$DNS_PORT" @127.0.0.1 "$name" "$rtype" 2>/dev/null)" && [ -n "$answer" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "compose-e2e: $name $rtype has no answer after ${DIG_TIMEOUT_S}s" >&2; exit 1; }
    sleep 0.5
  done
  echo "compose-e2e: dig $name $rtype -> $(echo "$answer" | tr '\n' ' ')"
  case "$name" in
    cell-*)  # a cell's own name answers through the caching resolver too, as clients ask it
      until answer="$(dig +short +time=1 +tries=1 -p "$RESOLVER_PORT" @127.0.0.1 "$name" "$rtype" 2>/dev/null)" && [ -n "$answer" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "compose-e2e: $name $rtype has no answer through the resolver after ${DIG_TIMEOUT_S}s" >&2; exit 1; }
        sleep 0.5
      done
      echo "compose-e2e: dig @resolver $name $rtype -> $(echo "$answer" | tr '\n' ' ')" ;;
  esac
done
UP_TO_DIG=$(since "$t_up")
echo "compose-e2e: compose up -> dig answering for all ${#QUESTIONS[@]} endpoint/type pairs in ${UP_TO_DIG}s"

# Every account's own name through the caching resolver: a CNAME to its cell's name (or the legacy
# regional one), followed to the target's addresses, as a client's resolver follows it.
mapfile -t ACCOUNTS < <(curl -sf "$CELLMAP_URL/v1/cellmap" | "$PY" -c '
import sys
from services.cells.cellmap import CellMap
for name, target in CellMap.model_validate_json(sys.stdin.read()).names().items():
    print(name.rstrip("."), target.rstrip("."))')
[ "${#ACCOUNTS[@]}" -gt 0 ] || { echo "compose-e2e: the cell map lists no accounts" >&2; exit 1; }
CELL_ACCOUNTS=0
deadline=$(( $(date +%s) + DIG_TIMEOUT_S ))
for q in "${ACCOUNTS[@]}"; do
  read -r name target <<<"$q"
  until answer="$(dig +short +time=1 +tries=1 -p "$RESOLVER_PORT" @127.0.0.1 "$name" A 2>/dev/null)" \
      && [ "$(head -n 1 <<<"$answer")" = "$target." ] && grep -Eq '^[0-9]+(\.[0-9]+){3}$' <<<"$answer"; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "compose-e2e: $name has no CNAME to $target with addresses after ${DIG_TIMEOUT_S}s (last: $answer)" >&2; exit 1; }
    sleep 0.5
  done
  case "$target" in cell-*) CELL_ACCOUNTS=$((CELL_ACCOUNTS + 1)) ;; esac
  echo "compose-e2e: dig @resolver $name A -> $(echo "$answer" | tr '\n' ' ')"
done
[ "$CELL_ACCOUNTS" -gt 0 ] || { echo "compose-e2e: no account of the map is in a cell" >&2; exit 1; }
UP_TO_ACCOUNTS=$(since "$t_up")
echo "compose-e2e: compose up -> all ${#ACCOUNTS[@]} account names answering through the resolver ($CELL_ACCOUNTS in cells) in ${UP_TO_ACCOUNTS}s"

# The console's view grouped by cell: every cell with its own endpoint, its trio and its accounts
# (the prober's), all answering, before the race (which reads nothing of the cells).
deadline=$(( $(date +%s) + 60 ))
until groups="$(curl -sf "$CONSOLE_URL/api/state" | "$PY" -c '
import json, sys
s = json.load(sys.stdin) or {}
cells = s.get("cells") or []
if len(cells) != int(sys.argv[1]):
    sys.exit(1)
out = []
for c in cells:
    eps = [e["endpoint"] for e in s["endpoints"] if e.get("cell") == c["cell"]]
    trio = [e["enactor"] for e in s["enactors"] if e.get("cell") == c["cell"]]
    accounts = c.get("accounts") or {}
    if len(eps) != 1 or len(trio) != 3 or not accounts.get("answering") or accounts.get("lost"):
        sys.exit(1)
    out.append("%s: %s, %d enactors, %d accounts answering" % (c["cell"], eps[0], len(trio), accounts["answering"]))
print("; ".join(out))' "$(( ${#PLANNER_URLS[@]} - 1 ))" 2>/dev/null)"; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "compose-e2e: the console does not group the cells: $(curl -sf "$CONSOLE_URL/api/state" | head -c 600)" >&2; exit 1; }
  sleep 1
done
echo "compose-e2e: console grouped by cell: $groups"

# The race of 20 October on the containers, guard on: the guard must hold (exit 0).
t_race=$(now)
"$DNSCTL" race --attach --state-dir "$WORK/state" --guard on
RACE_S=$(since "$t_race")
echo "compose-e2e: race --attach --guard on held in ${RACE_S}s"

# The console's timeline: built from the `logs` volume it mounts read-only (its own container),
# it must hold this run's events of the planner, the enactors and the race.
deadline=$(( $(date +%s) + 30 ))
until lanes="$(curl -sf "$CONSOLE_URL/api/timeline" | "$PY" -c '
import json, sys
t = json.load(sys.stdin) or {}
lanes = set(t.get("lanes", []))
if not {"planner", "enactor-a", "enactor-b", "enactor-c", "race"} <= lanes:
    sys.exit(1)
print(t["events"], " ".join(sorted(lanes)))' 2>/dev/null)"; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "compose-e2e: the console's timeline lacks the planner, enactor or race events: $(curl -sf "$CONSOLE_URL/api/timeline" | head -c 600)" >&2; exit 1; }
  sleep 1
done
echo "compose-e2e: console timeline from the logs volume: ${lanes%% *} events, lanes ${lanes#* }"

t_down=$(now)
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1
STARTED=0
echo "compose-e2e: down -v in $(since "$t_down")s"
echo "compose-e2e: passed: build ${BUILD_S}s, up -> healthy ${UP_TO_HEALTHY}s, up -> dig ${UP_TO_DIG}s, up -> accounts ${UP_TO_ACCOUNTS}s, race ${RACE_S}s, total $(since "$t0")s"
