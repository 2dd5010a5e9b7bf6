#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for trying the Slurm launchers (used by slurm/test.sh).
#   slurm/local-cluster.sh up STATE_FILE     use the cluster that answers, else set one up (root)
#   slurm/local-cluster.sh down STATE_FILE   stop what `up` started, remove the config it wrote
# `up` never touches a cluster that already answers. Otherwise, as root: installs slurm-wlm and munge with
# apt-get when missing (Debian: Slurm 22.05), writes /etc/slurm/slurm.conf when there is none (this host as
# controller and only node, all its cores, proctrack/linuxproc: no cgroups needed), then starts munged,
# slurmctld and slurmd. STATE_FILE records what it did, for `down`. Nothing leaves the machine.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
action=${1:?usage: $0 up|down STATE_FILE}
state=${2:?usage: $0 up|down STATE_FILE}
say() { echo "local-cluster: $*"; }

answers() { scontrol ping 2>/dev/null | grep -q "is UP"; }

node_state() { sinfo --noheader --format=%t 2>/dev/null | head -1; }

wait_for_idle() {
    for _ in $(seq 60); do
        case "$(node_state)" in
            idle | mix | alloc) return 0 ;;
            down* | drain* | drng*) scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true ;;
        esac
        sleep 1
    done
    say "the node did not become idle: $(sinfo 2>&1 | tail -2)" >&2
    return 1
}

write_conf() {
    local memory
    memory=$(($(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 8 / 10))  # leave the OS a fifth
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
    cat >"$CONF" <<EOF
# Written by rge's slurm/local-cluster.sh: a one-node cluster for tests (removed by its "down").
ClusterName=rge-local
SlurmctldHost=$(hostname -s)
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
NodeName=$(hostname -s) CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$(hostname -s) Default=YES MaxTime=INFINITE State=UP
EOF
    echo "conf $CONF" >>"$state"
}

running() { [ -f "$1" ] && [ "$(cat "/proc/$(cat "$1")/comm" 2>/dev/null)" = "$2" ]; }  # pid file, name

start_daemon() {  # name, pid file, command...
    local name=$1 pid_file=$2
    shift 2
    running "$pid_file" "$name" && return
    rm -f "$pid_file"  # a stale one from an earlier boot
    "$@"
    for _ in $(seq 20); do running "$pid_file" "$name" && break; sleep 0.5; done
    running "$pid_file" "$name" || { say "$name did not start (see /var/log/slurm, /var/log/munge)" >&2; return 1; }
    echo "pid $(cat "$pid_file") $name" >>"$state"
}

up() {
    : >"$state"
    if answers; then
        say "using the Slurm cluster that answers ($(scontrol ping | head -1))"
        wait_for_idle
        return
    fi
    if [ "$(id -u)" != 0 ]; then
        say "no Slurm controller answers (scontrol ping) and setting one up needs root" >&2
        return 1
    fi
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        say "installing slurm-wlm and munge with apt-get (root)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
    fi
    [ -f "$CONF" ] || { say "writing $CONF (this host only)"; write_conf; }
    say "starting munged, slurmctld and slurmd as root"
    # munged refuses keys and folders that are not the munge user's own.
    [ -f /etc/munge/munge.key ] || mungekey --create >/dev/null 2>&1 || create-munge-key -f >/dev/null
    mkdir -p /run/munge /var/log/munge /var/lib/munge /var/log/slurm
    chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
    start_daemon munged /run/munge/munged.pid runuser -u munge -- munged
    start_daemon slurmctld /run/slurmctld.pid slurmctld
    start_daemon slurmd /run/slurmd.pid slurmd
    for _ in $(seq 30); do answers && break; sleep 1; done
    answers || { say "slurmctld does not answer (see /var/log/slurm/slurmctld.log)" >&2; return 1; }
    wait_for_idle
    say "up: $(sinfo --noheader --format='%P %D node(s) %c CPUs %t')"
}

down() {
    [ -f "$state" ] || return 0
    # Reverse order: slurmd and slurmctld before munged, the config last.
    tac "$state" | while read -r kind what name; do
        case $kind in
            pid)
                kill "$what" 2>/dev/null || continue
                for _ in $(seq 20); do kill -0 "$what" 2>/dev/null || break; sleep 0.5; done
                say "stopped $name"
                ;;
            conf) rm -f "$what" && say "removed $what" ;;
        esac
    done
    rm -f "$state"
}

"$action"
