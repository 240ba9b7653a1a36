#!/usr/bin/env bash
# c1m-host.sh: the kit's helper on each machine of `--topology hosts`. c1m-bench ships
# it, with the binaries, lib.sh, sysctl-apply.sh, sysctl-restore.sh and the profile, into
# the run's private directory on that host (mktemp -d, mode 0700) and runs it over ssh.
#
#   c1m-host.sh run PROGRAM ARGS...     runs PROGRAM (its pid in pids/), exits with its
#                                       status; SIGTERMs it when the ssh session that
#                                       started this ends (the parent goes away)
#   c1m-host.sh stop                    SIGTERM to every program started with run
#   c1m-host.sh apply TOKEN KEY=VALUE...   sysctl-apply.sh with the state file of TOKEN
#   c1m-host.sh watchdog TOKEN KEY...   takes this machine's lock (host.lock in the
#                                       state directory, held until it is done; another
#                                       run holding it is an error), prints
#                                       "c1m-host: ready", then waits until stdin (the
#                                       run's ssh session) closes, then stops every
#                                       program started with run, restores the sysctls
#                                       of TOKEN (keys KEY...) and removes this directory
#   c1m-host.sh state TOKEN             prints the path of TOKEN's sysctl state file
#
# The state file of TOKEN is sysctl-TOKEN.saved in the kit's private state directory
# (/run/c1m for root, see lib.sh): the same safety rules as a local run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/scripts/lib.sh"
cd "$here"

token_ok() { [[ "$1" =~ ^[A-Za-z0-9_.-]+$ ]] || c1m_die "bad token '$1'"; }

state_file() {
    local dir
    token_ok "$1"
    dir=$(c1m_state_dir) || return 1
    printf '%s/sysctl-%s.saved' "$dir" "$1"
}

run() {
    local child watch rc=0 ppid
    mkdir -p pids
    "$@" </dev/null &
    child=$!
    printf '%s\n' "$child" >"pids/$child"
    ppid=$PPID
    # The ssh session is our parent; once it is gone we are re-parented: stop the program.
    (
        while [[ "$(cut -d' ' -f4 "/proc/$$/stat" 2>/dev/null)" == "$ppid" ]] && kill -0 "$child" 2>/dev/null; do
            sleep 1
        done
        kill -TERM "$child" 2>/dev/null || true
    ) </dev/null >/dev/null 2>&1 &
    watch=$!
    wait "$child" || rc=$?
    kill "$watch" 2>/dev/null || true
    rm -f "pids/$child"
    exit "$rc"
}

stop_all() {
    local f pid sig=$1
    for f in pids/*; do
        [[ -f "$f" ]] || continue
        pid=$(<"$f")
        [[ "$pid" =~ ^[0-9]+$ ]] && kill "-$sig" "$pid" 2>/dev/null || true
    done
}

# Holds this machine's lock on fd 9 for as long as this process lives. Several "hosts"
# of one run may share a machine: the run's id (TOKEN less its host number) is written
# next to the lock, and a watchdog of the same run goes on without it.
take_host_lock() {
    local run=${1%-*} dir owner
    command -v flock >/dev/null || c1m_die "flock (util-linux) is missing on $(hostname)"
    dir=$(c1m_state_dir) || c1m_die "no private state directory on $(hostname)"
    exec 9>>"$dir/host.lock"
    if flock -n 9; then
        printf '%s\n' "$run" >"$dir/host.owner"
        return
    fi
    owner=$(head -c 100 "$dir/host.owner" 2>/dev/null || true)
    [[ "$owner" == "$run" ]] ||
        c1m_die "another c1m run (${owner:-unknown}) holds $dir/host.lock on $(hostname): wait for it to end"
    exec 9>&-
}

watchdog() {
    local token=$1 state i keys=()
    shift
    for k in "$@"; do keys+=(--key "$k"); done
    state=$(state_file "$token")
    take_host_lock "$token"
    printf 'c1m-host: ready\n'
    while read -r _; do :; done || true
    # A session that died took our stdout/stderr with it: carry on without them (a
    # write there would end this script on SIGPIPE before the restore).
    trap '' PIPE
    if ! printf '\n' >&2 2>/dev/null; then exec >/dev/null 2>&1; fi
    c1m_log "$(hostname): the run's ssh session ended: stopping its programs, restoring, removing $here"
    stop_all TERM
    for ((i = 0; i < 20; i++)); do
        compgen -G 'pids/*' >/dev/null || break
        sleep 0.5
    done
    stop_all KILL
    local status=0
    if [[ -e "$state" ]]; then
        "$here/scripts/sysctl-restore.sh" --state "$state" "${keys[@]}" || status=$?
    fi
    cd /
    rm -rf -- "$here"
    exit "$status"
}

cmd=${1:-}
shift || true
case "$cmd" in
    run) [[ $# -gt 0 ]] || c1m_die "run: no program"; run "$@" ;;
    stop) stop_all TERM ;;
    apply)
        state=$(state_file "${1:?apply TOKEN KEY=VALUE...}")
        shift
        sets=()
        for kv in "$@"; do sets+=(--set "$kv"); done
        exec "$here/scripts/sysctl-apply.sh" --state "$state" "${sets[@]}"
        ;;
    watchdog) watchdog "${1:?watchdog TOKEN KEY...}" "${@:2}" ;;
    state) state_file "${1:?state TOKEN}"; echo ;;
    *) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
