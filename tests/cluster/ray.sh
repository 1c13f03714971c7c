#!/usr/bin/env bash
# A real two-node Ray cluster on this machine, for xling's tests (and for trying
# `xling run --backend ray` on a laptop):
#
#   tests/cluster/ray.sh up            # `ray start --head` plus a second node joining it
#   tests/cluster/ray.sh env           # the address: export XLING_TEST_RAY_ADDRESS=127.0.0.1:6390
#   tests/cluster/ray.sh status        # which nodes run
#   tests/cluster/ray.sh worker-kill   # kill the second node's processes at once (a node lost), worker-start again
#   tests/cluster/ray.sh down          # stop both nodes, by pid
#
# Both nodes are `ray start --block` processes started here (their pids recorded; each
# stops its own raylet and workers when it gets SIGTERM), addressed on 127.0.0.1 (Ray's
# GCS and raylets still listen on every interface: Ray has no option against it), one CPU each, no
# dashboard, token authentication (a token of its own), with Ray's session files in $XLING_CLUSTER_DIR/ray (default
# /tmp/xling-cluster/ray). Ray is the one of the Python that runs xling: $PYTHON
# (default python3) must have it (pip install 'xling[ray]'). Workers inherit this
# shell's environment (PYTHONPATH included), as tasks on a real cluster inherit the
# node's. Port: XLING_RAY_PORT (default 6390) for the head's GCS.
set -euo pipefail

ROOT=${XLING_CLUSTER_DIR:-/tmp/xling-cluster}
STATE="$ROOT/ray"
# shellcheck source=tests/cluster/lib.sh
. "$(dirname "$0")/lib.sh"

PYTHON=${PYTHON:-python3}
RAY="$(dirname "$(command -v "$PYTHON" || echo "$PYTHON")")/ray" # the ray of that Python
PORT=${XLING_RAY_PORT:-6390}
ADDRESS="127.0.0.1:$PORT"
COMMON=(--block --node-ip-address=127.0.0.1 --num-cpus=1 --disable-usage-stats)
# Token authentication with a token of this cluster's own: both nodes and every driver
# (xling) must present it.
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$STATE/auth_token"

nodes_alive() { # nodes_alive N: `ray status` lists N active nodes
    [ "$(timeout 30 "$RAY" status --address="$ADDRESS" 2>/dev/null | awk '/^Active:/ {a = 1; next} /^(Idle|Pending|Recent)/ {a = 0} a && /node_/' | wc -l)" -eq "$1" ]
}

start_worker() {
    start ray-worker "$RAY" start --address="$ADDRESS" "${COMMON[@]}"
    remember ray-worker
    wait_for 120 "the second Ray node" nodes_alive 2
}

up() {
    [ -x "$RAY" ] || die "no ray next to $PYTHON: pip install 'xling[ray]'" 3
    mkdir -p "$ROOT"
    if alive ray-head && alive ray-worker; then
        say "already up at $ADDRESS"
        return 0
    fi
    ls "$PIDS"/* >/dev/null 2>&1 && down # a half-started cluster: stop what of it runs
    rm -rf "$STATE"
    mkdir -p "$STATE/tmp"
    (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$RAY_AUTH_TOKEN_PATH")
    start ray-head "$RAY" start --head --port="$PORT" --temp-dir="$STATE/tmp" --include-dashboard=false "${COMMON[@]}"
    remember ray-head
    wait_for 120 "the Ray head" nodes_alive 1
    start_worker
    printf 'export XLING_TEST_RAY_ADDRESS=%q RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=%q\n' "$ADDRESS" "$RAY_AUTH_TOKEN_PATH" >"$STATE/env"
    say "up: two nodes at $ADDRESS (one CPU each)"
}

down() {
    stop ray-worker 60 # a node drains its tasks for up to 30 s before it stops
    stop ray-head 60
    rm -f "$STATE/env"
    say "down"
}

status() {
    local d
    for d in ray-head ray-worker; do
        if alive "$d"; then echo "$d: running (pid $(cat "$PIDS/$d"))"; else echo "$d: stopped"; fi
    done
    alive ray-head && alive ray-worker
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
env) [ -f "$STATE/env" ] && cat "$STATE/env" || die "not up (tests/cluster/ray.sh up)" ;;
worker-kill) kill_group ray-worker ;;
worker-start) alive ray-worker || start_worker ;;
*) die "usage: $0 up|down|status|env|worker-kill|worker-start" 2 ;;
esac
