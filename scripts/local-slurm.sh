#!/usr/bin/env bash
# A one-node SLURM cluster on this Debian machine, to run alrun's cluster sweeps for real
# (tests/cluster): munged, MariaDB + slurmdbd (so `sacct` lists jobs: without slurmdbd SLURM 22.05
# has no job accounting, only `accounting_storage/none`), slurmctld and slurmd, all as root.
#
#   sudo scripts/local-slurm.sh start   # installs slurm-wlm, slurmdbd, munge, mariadb-server if missing
#   sudo scripts/local-slurm.sh stop    # stops what start started, removes its config and state
#   scripts/local-slurm.sh status
#
# No cgroup plugins (proctrack/linuxproc, task/none): they need a writable cgroup tree, which a
# container rarely has. The node is this host as `slurmd -C` sees it (real CPUs and memory).
# Refuses to touch a SLURM set-up it did not write (/etc/slurm/slurm.conf without its marker).
set -euo pipefail

DIR="${ALRUN_SLURM_DIR:-/var/tmp/alrun-slurm}"   # state, logs, pid files
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
MARK="# written by alrun scripts/local-slurm.sh"
CLUSTER=alrun
DB=alrun_slurm_acct
export SLURM_CONF="$CONF"

say() { echo "local-slurm: $*" >&2; }
die() {
  say "$*"
  exit 1
}
need_root() { [ "$(id -u)" = 0 ] || die "run as root (sudo $0 $1): it starts munged, slurmctld and slurmd"; }

# wait_for SECONDS WHAT CMD...: retry CMD until it succeeds, or fail naming WHAT and the logs
wait_for() {
  local t=$1 what=$2
  shift 2
  for _ in $(seq $((t * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "$what did not come up in ${t}s; see $DIR/*.log"
}

alive() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

install_packages() {
  local missing=()
  command -v slurmctld >/dev/null || missing+=(slurmctld)
  command -v slurmd >/dev/null || missing+=(slurmd)
  command -v sbatch >/dev/null || missing+=(slurm-client)
  command -v slurmdbd >/dev/null || missing+=(slurmdbd)
  command -v munged >/dev/null || missing+=(munge)
  command -v mariadbd >/dev/null || missing+=(mariadb-server)
  [ ${#missing[@]} = 0 ] && return 0
  say "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi  # already running
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
  install -d -o munge -g munge -m 755 /run/munge
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  cp /run/munge/munged.pid "$DIR/munged.pid"
  wait_for 10 munged sh -c 'munge -n | unmunge'
}

start_mariadb() {
  if mariadb-admin ping >/dev/null 2>&1; then return 0; fi  # a server already runs: use it
  install -d -o mysql -g mysql -m 755 /run/mysqld "$DIR/mysql"  # mariadbd writes as mysql
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
  setsid /usr/sbin/mariadbd --user=mysql --pid-file="$DIR/mysql/mariadbd.pid" \
    --log-error="$DIR/mysql/mariadbd.log" --innodb-buffer-pool-size=256M \
    --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
  wait_for 30 MariaDB mariadb-admin ping
  cp "$DIR/mysql/mariadbd.pid" "$DIR/mariadbd.pid"
}

write_configs() {
  local node host
  node=$(slurmd -C | head -1)   # NodeName=HOST CPUs=.. Boards=.. ... RealMemory=..
  host=${node#NodeName=}
  host=${host%% *}
  cat >"$CONF" <<EOF
$MARK
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
# a one-node test cluster: schedule every 5 s, and start a requeued job 10 s after its requeue
# (the default credential lifetime, 120 s, is also how long a requeued job waits)
SchedulerParameters=sched_interval=5,bf_interval=5
AuthInfo=cred_expire=10
MailProg=/bin/true
ReturnToService=2
JobRequeue=1
KillWait=5
InactiveLimit=0
MinJobAge=60
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$DBD_CONF" <<EOF
$MARK
AuthType=auth/munge
DbdHost=$host
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=$DB
EOF
  chmod 600 "$DBD_CONF"
}

start() {
  need_root start
  if alive slurmctld; then
    say "already running (stop it first for a fresh cluster)"
    exit 0
  fi
  for f in "$CONF" "$DBD_CONF"; do
    if [ -e "$f" ] && ! grep -qx "$MARK" "$f"; then
      die "$f exists and was not written by this script: this machine has its own SLURM; use it"
    fi
  done
  install_packages
  trap 'tail -n 5 "$DIR"/*.log "$DIR"/mysql/*.log >&2 || true; say "start failed: stopping what it started"; teardown' EXIT
  rm -rf "$DIR"
  mkdir -p "$DIR/ctld" "$DIR/slurmd"
  start_munge
  start_mariadb
  # a fresh accounting database each start: job ids restart at 1 with the new controller state
  mariadb -e "DROP DATABASE IF EXISTS $DB"
  write_configs
  slurmdbd
  wait_for 30 slurmdbd sacctmgr -n list cluster
  sacctmgr -i add cluster "$CLUSTER" >/dev/null
  slurmctld -c
  wait_for 30 slurmctld scontrol ping
  slurmd
  # idle: the node registered with its real resources (a mismatch would show drained)
  wait_for 60 "the node (sinfo idle)" sh -c '[ "$(sinfo -h -o %T)" = idle ]'
  trap - EXIT
  sinfo -h -N -o "node %N: %T, %c CPUs, %m MB" >&2
  say "up; logs and state in $DIR"
}

stop_pid() {
  local name=$1
  alive "$name" || return 0
  local pid
  pid=$(cat "$DIR/$name.pid")
  kill "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  say "$name ($pid) ignored SIGTERM for 10 s: SIGKILL"
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  need_root stop
  if [ -e "$CONF" ] && ! grep -qx "$MARK" "$CONF"; then
    die "$CONF was not written by this script: not stopping this machine's SLURM"
  fi
  teardown
  say "stopped"
}

teardown() {
  if alive slurmctld; then scancel --full --quiet --user=root 2>/dev/null || true; fi
  stop_pid slurmd
  stop_pid slurmctld
  stop_pid slurmdbd
  if alive mariadbd; then mariadb -e "DROP DATABASE IF EXISTS $DB" || true; fi
  stop_pid mariadbd   # only if start started it
  stop_pid munged     # likewise
  rm -f "$CONF" "$DBD_CONF"
  rm -rf "$DIR"
}

status() {
  if alive slurmctld && scontrol ping >/dev/null 2>&1; then
    sinfo -h -N -o "node %N: %T, %c CPUs, %m MB"
  else
    echo "local-slurm: not running" >&2
    exit 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 {start|stop|status}" ;;
esac
