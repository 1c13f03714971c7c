# Shared by slurm.sh and ray.sh: daemons started in the background with their pid
# recorded, stopped by that pid only (never by name), and bounded waits.
# Sourced, not run: the caller sets STATE (its own folder) before sourcing.

PIDS="$STATE/pids"
LOGS="$STATE/log"

say() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() { say "$*"; exit "${2:-1}"; }

# start NAME CMD...: runs CMD in its own session, output in $LOGS/NAME.log, pid in $PIDS/NAME.
start() {
    local name=$1; shift
    mkdir -p "$PIDS" "$LOGS"
    setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
    echo $! >"$PIDS/$name"
}

# alive NAME: the process we started as NAME still runs (and is still ours: its pid was
# not reused, checked against the start time recorded beside it).
alive() {
    local pid
    pid=$(cat "$PIDS/$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    [ "$(started_at "$pid")" = "$(cat "$PIDS/$1.start" 2>/dev/null)" ]
}

started_at() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

# remember NAME: records the start time of the pid just started (see alive).
remember() { started_at "$(cat "$PIDS/$1")" >"$PIDS/$1.start"; }

# stop NAME [SECONDS]: SIGTERM to the pid we started, SIGKILL if it outlives SECONDS.
stop() {
    local name=$1 wait=${2:-20} pid i
    if alive "$name"; then
        pid=$(cat "$PIDS/$name")
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < wait * 10; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name ($pid) ignored SIGTERM for ${wait}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$PIDS/$name" "$PIDS/$name.start"
}

# kill_group NAME: SIGKILL to every process of the session NAME was started in (start()
# gives each its own): a machine lost, as far as its processes can tell.
kill_group() {
    if alive "$1"; then
        kill -KILL -- "-$(cat "$PIDS/$1")" 2>/dev/null || true
    fi
    rm -f "$PIDS/$1" "$PIDS/$1.start"
}

# wait_for SECONDS WHAT CMD...: retries CMD (each try at most 10 s) until it succeeds; dies
# naming WHAT when SECONDS have passed.
wait_for() {
    local seconds=$1 what=$2; shift 2
    local deadline=$((SECONDS + seconds))
    while ((SECONDS < deadline)); do
        if [ "$(type -t "$1")" = function ]; then
            "$@" >/dev/null 2>&1 && return 0
        else
            timeout 10 "$@" >/dev/null 2>&1 && return 0
        fi
        sleep 0.5
    done
    die "$what did not come up within ${seconds}s (logs: $LOGS)"
}
