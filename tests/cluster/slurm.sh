#!/usr/bin/env bash
# A real single-node Slurm on this machine, for xling's tests (and for trying
# `xling run --backend slurm` on a laptop):
#
#   tests/cluster/slurm.sh up        # install what is missing, start everything, wait for the node
#   tests/cluster/slurm.sh env       # the line to eval in a shell: export SLURM_CONF=...
#   tests/cluster/slurm.sh status    # which daemons run, and sinfo
#   tests/cluster/slurm.sh dbd-stop  # stop slurmdbd only (sacct stops answering), dbd-start again
#   tests/cluster/slurm.sh down      # cancel every job, stop what `up` started, by pid
#
# Debian's packages (munge, slurmctld, slurmd, slurm-client, slurmdbd, mariadb-server)
# are installed with apt when missing, which needs root. Nothing is written under /etc:
# every config, key, socket, database, spool, log and pid lives in $XLING_CLUSTER_DIR/slurm
# (default /tmp/xling-cluster/slurm); clients find the cluster through SLURM_CONF.
# The node is this machine (its cores and memory); slurmctld, slurmd and MariaDB listen
# on 127.0.0.1 only (slurmdbd 22.05 has no such option: it listens on every interface
# and accepts only credentials made with this cluster's own munge key). Processes are
# tracked with proctrack/linuxproc and task/none (no cgroups), and accounting goes
# through slurmdbd to a private MariaDB, so that sacct answers.
# Ports: XLING_SLURM_PORT (default 6817) for slurmctld, +1 slurmd, +2 slurmdbd, +3 MariaDB.
set -euo pipefail

ROOT=${XLING_CLUSTER_DIR:-/tmp/xling-cluster}
STATE="$ROOT/slurm"
# shellcheck source=tests/cluster/lib.sh
. "$(dirname "$0")/lib.sh"

PORT=${XLING_SLURM_PORT:-6817}
NODE=$(hostname -s)
CONF="$STATE/etc/slurm.conf"
MUNGE_SOCKET="$STATE/run/munge.socket"
DB_SOCKET="$STATE/run/mariadb.sock"
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
PROGRAMS=(munged slurmctld slurmd sbatch sacct slurmdbd mariadbd mariadb-install-db)
PARTITION_MAX_TIME=60 # minutes; a test submits over it
DAEMONS=(slurmd slurmctld slurmdbd mariadb munged) # in the order they stop

export SLURM_CONF="$CONF" PATH="$PATH:/usr/sbin:/sbin" # the daemons live in sbin

install_packages() {
    local missing=() p
    for p in "${PROGRAMS[@]}"; do
        command -v "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; installing them needs root (apt-get install ${PACKAGES[*]})" 3
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them" 3
    say "installing ${PACKAGES[*]} (missing: ${missing[*]})"
    # The packages' own init scripts must not start system-wide daemons on /etc configs.
    local guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        guard=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$guard" && chmod +x "$guard"
    fi
    {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" ||
            { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"; }
    } >"$ROOT/apt.log" 2>&1 || { [ -n "$guard" ] && rm -f "$guard"; die "apt-get install failed, see $ROOT/apt.log" 3; }
    [ -n "$guard" ] && rm -f "$guard"
    return 0
}

write_configs() {
    local cpus mem
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    mkdir -p "$STATE"/{etc,run,spool/ctld,spool/d,mariadb}
    dd if=/dev/urandom of="$STATE/etc/munge.key" bs=1024 count=1 status=none
    chmod 400 "$STATE/etc/munge.key"
    DB_PASS=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    cat >"$CONF" <<EOF
# Written by tests/cluster/slurm.sh: a single-node cluster on 127.0.0.1.
ClusterName=xling
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
# Fast reactions for the tests: a finished job stays in slurmctld's memory (what squeue
# sees) 30 s; jobs are killed 5 s after their SIGTERM.
MinJobAge=30
KillWait=5
JobRequeue=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$((PORT + 2))
# for slurmdbd this names the munge socket its clients use
AccountingStoragePass=$MUNGE_SOCKET
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=$PARTITION_MAX_TIME State=UP
EOF
    cat >"$STATE/etc/slurmdbd.conf" <<EOF
# Written by tests/cluster/slurm.sh
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$((PORT + 2))
SlurmUser=root
PidFile=$STATE/run/slurmdbd.pid
LogFile=$LOGS/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$((PORT + 3))
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$STATE/etc/slurmdbd.conf"
}

start_mariadb() {
    mariadb-install-db --no-defaults --datadir="$STATE/mariadb" --user="$(id -un)" \
        --auth-root-authentication-method=socket --skip-test-db >"$LOGS/mariadb-install.log" 2>&1 ||
        die "mariadb-install-db failed, see $LOGS/mariadb-install.log"
    start mariadb mariadbd --no-defaults --datadir="$STATE/mariadb" --socket="$DB_SOCKET" \
        --bind-address=127.0.0.1 --port=$((PORT + 3)) --pid-file="$STATE/run/mariadb.pid" \
        --user="$(id -un)" --skip-name-resolve --innodb-buffer-pool-size=32M --log-error="$LOGS/mariadb.err"
    remember mariadb
    wait_for 60 MariaDB mariadb --no-defaults -S "$DB_SOCKET" -u root -e "SELECT 1"
    mariadb --no-defaults -S "$DB_SOCKET" -u root -e "
        CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_dbd() {
    start slurmdbd slurmdbd -D
    remember slurmdbd
    wait_for 60 slurmdbd sacctmgr -i show cluster
}

is_up() {
    local d
    for d in "${DAEMONS[@]}"; do alive "$d" || return 1; done
}

node_idle() { [ "$(timeout 10 sinfo -h -N -n "$NODE" -o %t 2>/dev/null)" = idle ]; }

up() {
    mkdir -p "$ROOT"
    if is_up; then
        say "already up (SLURM_CONF=$CONF)"
        return 0
    fi
    ls "$PIDS"/* >/dev/null 2>&1 && down # a half-started cluster: stop what of it runs, start afresh
    install_packages
    rm -rf "$STATE"
    mkdir -p "$STATE" && chmod 755 "$STATE" # munge wants its socket reachable
    write_configs
    start munged munged -F --force --key-file="$STATE/etc/munge.key" --socket="$MUNGE_SOCKET" \
        --pid-file="$STATE/run/munged.pid" --log-file="$LOGS/munged.log" --seed-file="$STATE/run/munge.seed"
    remember munged
    wait_for 20 munged test -S "$MUNGE_SOCKET"
    start_mariadb
    start_dbd
    start slurmctld slurmctld -D -c -f "$CONF"
    remember slurmctld
    wait_for 60 slurmctld scontrol ping
    start slurmd slurmd -D -N "$NODE" -f "$CONF"
    remember slurmd
    wait_for 60 "the node $NODE (idle in sinfo)" node_idle
    printf 'export SLURM_CONF=%q\n' "$CONF" >"$STATE/env"
    say "up: node $NODE idle, partition debug (MaxTime ${PARTITION_MAX_TIME} min); export SLURM_CONF=$CONF"
}

down() {
    if alive slurmctld; then # jobs first, so that no slurmstepd outlives its slurmd
        scancel --full --signal=KILL --state=RUNNING "--partition=debug" 2>/dev/null || true
        scancel --partition=debug 2>/dev/null || true
        for ((i = 0; i < 60; i++)); do
            [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
    local d
    for d in "${DAEMONS[@]}"; do stop "$d"; done
    rm -f "$STATE/env"
    say "down"
}

status() {
    local d
    for d in "${DAEMONS[@]}"; do
        if alive "$d"; then echo "$d: running (pid $(cat "$PIDS/$d"))"; else echo "$d: stopped"; fi
    done
    alive slurmctld && sinfo
    is_up
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
env) [ -f "$STATE/env" ] && cat "$STATE/env" || die "not up (tests/cluster/slurm.sh up)" ;;
dbd-stop) stop slurmdbd ;;
dbd-start) alive slurmdbd || start_dbd ;;
*) die "usage: $0 up|down|status|env|dbd-stop|dbd-start" 2 ;;
esac
