# shellcheck shell=bash
# A private one-node Slurm cluster on localhost for tests: munged with its own key and socket,
# slurmctld and slurmd with a generated slurm.conf, all state under one temporary directory.
# Source this file, then:
#   local_slurm_start DIR   # exports SLURM_CONF; returns non-zero (with the logs shown) on failure
#   local_slurm_stop DIR    # cancels jobs, stops the daemons, ends leftover job processes
# Needs root (slurmd runs jobs as their submitter; SlurmUser and SlurmdUser are root) and Debian's
# slurm-wlm and munge packages. Nothing outside DIR is written; the system munged/slurm services
# are not touched.

local_slurm_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

local_slurm_show_logs() {
  local dir=$1 log
  for log in "$dir"/munge/munged.log "$dir"/slurm/slurmctld.log "$dir"/slurm/slurmd.log; do
    [[ -f $log ]] || continue
    echo "---- last lines of $log" >&2
    tail -n 25 "$log" >&2
  done
}

# Polls CMD (a string run by bash) until it succeeds or SECONDS_LEFT run out.
local_slurm_wait_for() {
  local seconds_left=$1 cmd=$2
  while ((seconds_left > 0)); do
    if bash -c "$cmd" >/dev/null 2>&1; then return 0; fi
    sleep 1
    seconds_left=$((seconds_left - 1))
  done
  return 1
}

local_slurm_start() {
  local dir=$1
  local node host ctld_port slurmd_port cpus
  mkdir -p "$dir"/munge "$dir"/slurm/state "$dir"/slurm/spool
  # munged refuses a key readable by others and a socket directory writable by others.
  chmod 755 "$dir" "$dir"/munge
  mungekey --create --keyfile="$dir/munge/munge.key" --force
  chmod 600 "$dir/munge/munge.key"
  if ! munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
      --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
      --seed-file="$dir/munge/munged.seed"; then
    echo "local_slurm: munged did not start" >&2
    local_slurm_show_logs "$dir"
    return 1
  fi
  if ! local_slurm_wait_for 10 \
      "munge -S '$dir/munge/munge.socket' -n | unmunge -S '$dir/munge/munge.socket'"; then
    echo "local_slurm: munged does not answer on $dir/munge/munge.socket" >&2
    local_slurm_show_logs "$dir"
    return 1
  fi

  # slurmctld only runs on a host named in SlurmctldHost; the node has a fixed name of its own
  # (slurmd -N) and is reached on the loopback address.
  host=$(hostname -s)
  node=clisc-ci-node
  ctld_port=$(local_slurm_free_port)
  slurmd_port=$(local_slurm_free_port)
  cpus=$(nproc)
  cat >"$dir/slurm/slurm.conf" <<EOF
ClusterName=clisc-ci
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${ctld_port}
SlurmdPort=${slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${dir}/munge/munge.socket
StateSaveLocation=${dir}/slurm/state
SlurmdSpoolDir=${dir}/slurm/spool
SlurmctldPidFile=${dir}/slurm/slurmctld.pid
SlurmdPidFile=${dir}/slurm/slurmd.pid
SlurmctldLogFile=${dir}/slurm/slurmctld.log
SlurmdLogFile=${dir}/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SlurmdParameters=config_overrides
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${dir}/slurm/jobcomp.txt
MinJobAge=3600
KillWait=30
InactiveLimit=0
SlurmdTimeout=300
NodeName=${node} NodeAddr=127.0.0.1 NodeHostname=${host} CPUs=${cpus} State=UNKNOWN
PartitionName=ci Nodes=${node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  export SLURM_CONF="$dir/slurm/slurm.conf"

  slurmctld -D -i -f "$SLURM_CONF" >>"$dir/slurm/slurmctld.out" 2>&1 &
  echo $! >"$dir/slurm/slurmctld.daemon.pid"
  if ! local_slurm_wait_for 30 "scontrol ping | grep -q UP"; then
    echo "local_slurm: slurmctld did not come up" >&2
    local_slurm_show_logs "$dir"
    return 1
  fi
  slurmd -D -N "$node" -f "$SLURM_CONF" >>"$dir/slurm/slurmd.out" 2>&1 &
  echo $! >"$dir/slurm/slurmd.daemon.pid"
  if ! local_slurm_wait_for 60 \
      "sinfo -h -N -n $node -o %t | grep -Eq '^(idle|mix|alloc)'"; then
    echo "local_slurm: node $node did not become idle: $(sinfo -h -N -o '%N %t %E' 2>&1)" >&2
    local_slurm_show_logs "$dir"
    return 1
  fi
  echo "local_slurm: cluster up (SLURM_CONF=$SLURM_CONF, node $node, $cpus CPUs)"
}

# Processes whose environment names this cluster's slurm.conf: slurmstepd and the job processes
# (sbatch exports the submitter's environment, SLURM_CONF included). Only these are ended.
local_slurm_own_pids() {
  local conf=$1 env_file pid
  for env_file in /proc/[0-9]*/environ; do
    pid=${env_file#/proc/}
    pid=${pid%/environ}
    [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
    if { tr '\0' '\n' <"$env_file"; } 2>/dev/null | grep -qxF "SLURM_CONF=$conf"; then
      echo "$pid"
    fi
  done
}

local_slurm_stop() {
  local dir=$1 conf="$1/slurm/slurm.conf" pid_file pid pids
  if [[ -f $conf ]] && [[ -f $dir/slurm/slurmctld.daemon.pid ]]; then
    SLURM_CONF=$conf scancel --full --quiet --partition=ci 2>/dev/null || true
    local_slurm_wait_for 15 "[[ -z \$(SLURM_CONF='$conf' squeue -h 2>/dev/null) ]]" || true
  fi
  for pid_file in "$dir"/slurm/slurmd.daemon.pid "$dir"/slurm/slurmctld.daemon.pid \
      "$dir"/munge/munged.pid; do
    [[ -f $pid_file ]] || continue
    pid=$(cat "$pid_file")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pid_file"
  done
  if [[ -f $conf ]]; then
    pids=$(local_slurm_own_pids "$conf")
    if [[ -n $pids ]]; then
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
    fi
  fi
}
