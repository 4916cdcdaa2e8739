#!/bin/bash
# A private single-node Slurm cluster in a folder, for trying scripts/slurm/analyze-array.sbatch
# on one machine and for the tests: its own munge key and munged (own socket), a slurm.conf with
# free ports, slurmctld and slurmd in the foreground of background processes, logs in DIR/log.
# Nothing outside DIR is touched, and the machine's own Slurm or munge (if any) is not used.
#
#   scripts/slurm/local-cluster.sh start DIR    prints `export SLURM_CONF=DIR/slurm.conf` when up
#   scripts/slurm/local-cluster.sh stop DIR     cancels its jobs and stops its daemons
#
# Needs Debian's slurmctld, slurmd, slurm-client and munge (scripts/install-deps.sh). Run as
# root, or as a user who may start the daemons (SlurmUser and SlurmdUser are the caller).
# Proctrack linuxproc and no task plugin: no cgroups are needed.
#
# Exit status of start: 0 up; 3 it cannot run on this machine (a program missing, a daemon that
# does not start: the reason and the daemon's log are printed); 2 bad usage.
set -u

die() { echo "local-cluster: $*" >&2; exit 3; }

[ $# -eq 2 ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
cmd=$1
mkdir -p "$2" || die "cannot create $2"
dir=$(cd "$2" && pwd)
conf=$dir/slurm.conf

pid_of() { [ -s "$1" ] && cat "$1"; }

stop() {
  if [ -f "$conf" ] && [ -s "$dir/run/slurmctld.pid" ]; then
    SLURM_CONF=$conf timeout 10 scancel --full --quiet --user "$(id -un)" 2>/dev/null
    sleep 1
  fi
  local p
  for f in slurmd slurmctld munged; do
    p=$(pid_of "$dir/run/$f.pid") || continue
    kill "$p" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
    rm -f "$dir/run/$f.pid"
  done
  return 0
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

log_tail() { [ -f "$1" ] && { echo "--- $1 (last lines)"; tail -n 15 "$1"; } >&2; }

start() {
  for prog in munged munge slurmctld slurmd sbatch squeue scontrol sinfo scancel; do
    command -v "$prog" >/dev/null 2>&1 ||
      PATH=$PATH:/usr/sbin command -v "$prog" >/dev/null 2>&1 ||
      die "$prog is not installed (Debian packages slurmctld slurmd slurm-client munge; scripts/install-deps.sh)"
  done
  PATH=$PATH:/usr/sbin
  local user host cpus ctld_port d_port
  user=$(id -un)
  host=$(hostname -s)
  cpus=$(nproc)
  mkdir -p "$dir/munge" "$dir/socket" "$dir/state" "$dir/spool" "$dir/log" "$dir/run" || die "cannot write into $dir"
  chmod 755 "$dir" "$dir/socket"
  chmod 700 "$dir/munge"
  if [ ! -s "$dir/munge/munge.key" ]; then
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none || die "cannot make a munge key"
    chmod 400 "$dir/munge/munge.key"
  fi
  local force=()
  [ "$(id -u)" = 0 ] && force=(--force) # munged refuses root unless told; the key is ours alone
  munged "${force[@]}" --foreground --socket="$dir/socket/munge.sock" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" \
    >"$dir/log/munged.out" 2>&1 &
  for _ in $(seq 50); do [ -S "$dir/socket/munge.sock" ] && break; sleep 0.1; done
  if ! munge -S "$dir/socket/munge.sock" -n 2>"$dir/log/munge-check.err" | unmunge -S "$dir/socket/munge.sock" >/dev/null 2>&1; then
    log_tail "$dir/log/munged.out"; log_tail "$dir/log/munge-check.err"
    stop
    die "munged does not run here (see its output above)"
  fi

  ctld_port=$(free_port) && d_port=$(free_port) || die "no free TCP port on 127.0.0.1"
  cat >"$conf" <<CONF
# A private single-node cluster made by scripts/slurm/local-cluster.sh
ClusterName=hplocal
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/socket/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
InactiveLimit=0
KillWait=10
MinJobAge=3600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$conf
  slurmctld -D -i -f "$conf" >"$dir/log/slurmctld.out" 2>&1 &
  echo $! >"$dir/run/slurmctld.pid"
  slurmd -D -f "$conf" -N "$host" >"$dir/log/slurmd.out" 2>&1 &
  echo $! >"$dir/run/slurmd.pid"
  local state=
  for _ in $(seq 120); do
    state=$(timeout 5 sinfo -h -N -o %T 2>/dev/null | head -n 1)
    case "$state" in idle | mixed | allocated) break ;; esac
    kill -0 "$(cat "$dir/run/slurmctld.pid")" 2>/dev/null || break
    kill -0 "$(cat "$dir/run/slurmd.pid")" 2>/dev/null || break
    sleep 0.5
  done
  case "$state" in
    idle | mixed | allocated) ;;
    *)
      log_tail "$dir/log/slurmctld.log"; log_tail "$dir/log/slurmctld.out"
      log_tail "$dir/log/slurmd.log"; log_tail "$dir/log/slurmd.out"
      stop
      die "the node did not come up (state '${state:-no answer from slurmctld}'; logs above)"
      ;;
  esac
  echo "export SLURM_CONF=$conf"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
