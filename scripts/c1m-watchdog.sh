#!/usr/bin/env bash
# Finishes c1m.sh's cleanup when c1m.sh dies without running its own (SIGKILL, OOM
# kill): stops every process group it started and restores the sysctls it changed.
# c1m.sh starts it in its own session and stops it at the end of a normal exit; it is
# not meant to be run by hand.
#
#   c1m-watchdog.sh PID RUNDIR RESTORE_ARGS...
#
# RUNDIR/pgids lists the process groups c1m.sh started; RUNDIR/tuned exists while
# sysctls are applied; RESTORE_ARGS go to sysctl-restore.sh (state file, profile, keys).
# c1m.sh removes RUNDIR as the last step of its own cleanup.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pid=$1
rundir=$2
shift 2

running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ "${stat:0:1}" != Z ]]
}

while running "$pid"; do sleep 0.5; done
[[ -d "$rundir" ]] || exit 0
printf 'c1m-watchdog: c1m.sh (pid %s) ended without cleaning up: stopping its processes, restoring sysctls\n' "$pid" >&2
if [[ -f "$rundir/pgids" ]]; then
    mapfile -t groups <"$rundir/pgids"
    for g in "${groups[@]}"; do kill -TERM -- "-$g" 2>/dev/null; done
    sleep 3
    for g in "${groups[@]}"; do kill -KILL -- "-$g" 2>/dev/null; done
fi
if [[ -f "$rundir/tuned" ]]; then
    "$here/sysctl-restore.sh" "$@"
fi
rm -rf "$rundir"
