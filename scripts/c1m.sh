#!/usr/bin/env bash
# c1m.sh: one command from kernel tuning to a comparison.
#
# Builds the release binaries, checks the machine (preflight), saves and applies the
# sysctl profile (sysctl/c1m.conf), raises ulimits where it may, runs every server
# backend through every scenario, writes results/<date>-<host>-<scenario>/ with
# compare.md and SVG plots, prints the headline table, and on every exit (success,
# failure, Ctrl-C, kill) stops every process it started and restores every sysctl.
#
# Usage: scripts/c1m.sh [options]
#   --quick               small and fast (under 2 minutes): 2 s runs, 100/1000 conns,
#                         hold at 5000 connections
#   --scenarios LIST      comma list of pingpong,latency,hold,churn (default: all)
#   --backends LIST       comma list of uring,epoll,tokio-uring,tokio (default: all)
#   --conns N             connections for the hold scenario (default: as many as fit in
#                         memory, at most 1,000,000; --quick: 5000)
#   --duration S          measured seconds per run (default 5; --quick 2; hold: at least
#                         one heartbeat interval)
#   --rate MSGS/S         open-loop rate of the latency scenario (default: half of the
#                         slowest backend's closed-loop msgs/s at 1000 connections)
#   --out DIR             parent folder of the scenario folders (default: results/)
#   --no-tune             leave sysctls alone (also the case when not root)
#   --profile FILE        sysctl profile to apply (default: sysctl/c1m.conf)
#   --set KEY=VALUE       one more sysctl to apply after the profile (repeatable)
#   --tag NAME            appended to every run label (tune-sweep.sh uses it)
#   --no-build            use the binaries in target/release as they are
#   --cargo PATH          the cargo to build with (default: the invoking user's, see below)
#   --dry-run             print the preflight and the plan; no build, no tuning, no root
#   -h, --help            this text
#
# Scenarios (64-byte messages; server pinned to the first half of the CPUs, loadgen to
# the second half; on 2 CPUs: server CPU 0, loadgen CPU 1):
#   pingpong  closed loop, one message in flight per connection, at 100, 1000 and 10000
#             connections; one run folder per backend and count (<backend>-c<N>)
#   latency   open loop at one fixed rate for every backend (coordinated omission
#             corrected): p50/p99/p99.9/max
#   hold      as many connections as fit, up to 1M, each sending a heartbeat: ramp time,
#             failed connects, heartbeat latency, server RSS, kernel slab per connection
#   churn     connect, one exchange, close, again: connections per second, connect latency
# Backends that need one fd per connection (epoll, tokio, tokio-uring) run as several
# server processes (one port each) when one process's RLIMIT_NOFILE cannot hold them.
#
# Under sudo, the build runs as the invoking user (SUDO_USER) with that user's own
# toolchain (~/.cargo/bin/cargo as rustup installs it, or cargo on the secure PATH),
# so target/ stays theirs; only the runs need root. Result folders are handed to that
# user at exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPTS="$ROOT/scripts"
# shellcheck source=scripts/lib.sh
source "$SCRIPTS/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

ALL_SCENARIOS=(pingpong latency hold churn)
ALL_BACKENDS=(uring epoll tokio-uring tokio)
SERVER_BIN="$ROOT/target/release/c1m-server"
LOADGEN_BIN="$ROOT/target/release/c1m-loadgen"
REPORT=(python3 "$SCRIPTS/c1m_report.py")
PORT_LO=7000 # ports c1m.sh listens on: PORT_LO..PORT_HI, reserved in sysctl/c1m.conf
PORT_HI=7199
MSG_SIZE=64

quick=0
scenarios_arg=$(IFS=,; echo "${ALL_SCENARIOS[*]}")
backends_arg=$(IFS=,; echo "${ALL_BACKENDS[*]}")
hold_conns=""
duration=""
rate=""
out_parent="$ROOT/results"
tune=1
build=1
profile="$ROOT/sysctl/c1m.conf"
sets=()
tag=""
dry_run=0
cargo_arg=""
invocation=$(printf '%q ' "$0" "$@")

need_value() { [[ $# -ge 2 && -n "$2" ]] || { printf 'c1m.sh: %s needs a value\n' "$1" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
    arg=$1
    if [[ "$arg" == --*=* ]]; then
        set -- "${arg%%=*}" "${arg#*=}" "${@:2}"
        arg=$1
    fi
    case "$arg" in
        --quick) quick=1; shift ;;
        --scenarios) need_value "$@"; scenarios_arg=$2; shift 2 ;;
        --backends) need_value "$@"; backends_arg=$2; shift 2 ;;
        --conns) need_value "$@"; hold_conns=$2; shift 2 ;;
        --duration) need_value "$@"; duration=$2; shift 2 ;;
        --rate) need_value "$@"; rate=$2; shift 2 ;;
        --out) need_value "$@"; out_parent=$2; shift 2 ;;
        --no-tune) tune=0; shift ;;
        --profile) need_value "$@"; profile=$2; shift 2 ;;
        --set) need_value "$@"; sets+=("$2"); shift 2 ;;
        --tag) need_value "$@"; tag=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --cargo) need_value "$@"; cargo_arg=$2; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'c1m.sh: unknown argument %s (see --help)\n' "$arg" >&2; exit 2 ;;
    esac
done

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_number() { [[ "$1" =~ ^[0-9]+([.][0-9]+)?$ ]]; }
[[ -z "$hold_conns" ]] || { is_uint "$hold_conns" && ((hold_conns > 0)); } || c1m_die "--conns wants a positive integer"
[[ -z "$duration" ]] || { is_number "$duration" && [[ "$duration" != 0 ]]; } || c1m_die "--duration wants a positive number of seconds"
[[ -z "$rate" ]] || is_number "$rate" || c1m_die "--rate wants messages per second"
[[ -f "$profile" ]] || c1m_die "--profile $profile not found"
for s in "${sets[@]}"; do [[ "$s" == ?*=* ]] || c1m_die "--set wants KEY=VALUE, got '$s'"; done

# Lists in canonical order (latency uses what pingpong measured, so order matters).
pick_list() { # pick_list ARG ALL... : the ALL entries named in the comma list ARG
    local arg=$1 item known
    shift
    local -a want
    IFS=, read -r -a want <<<"$arg"
    for item in "${want[@]}"; do
        known=0
        for k in "$@"; do [[ "$k" == "$item" ]] && known=1; done
        ((known)) || { printf 'c1m.sh: unknown name "%s" (known: %s)\n' "$item" "$*" >&2; exit 2; }
    done
    for k in "$@"; do
        for item in "${want[@]}"; do [[ "$k" == "$item" ]] && { echo "$k"; break; }; done
    done
    return 0 # the last comparison may be false; that is not a failure
}
# Once in this shell (so a bad name exits with status 2), then for the result.
pick_list "$scenarios_arg" "${ALL_SCENARIOS[@]}" >/dev/null
pick_list "$backends_arg" "${ALL_BACKENDS[@]}" >/dev/null
mapfile -t SCENARIOS < <(pick_list "$scenarios_arg" "${ALL_SCENARIOS[@]}")
mapfile -t BACKENDS < <(pick_list "$backends_arg" "${ALL_BACKENDS[@]}")
[[ ${#SCENARIOS[@]} -gt 0 && ${#BACKENDS[@]} -gt 0 ]] || c1m_die "no scenario or no backend to run"
has_scenario() { local s; for s in "${SCENARIOS[@]}"; do [[ "$s" == "$1" ]] && return 0; done; return 1; }

# --- One run at a time on this machine -----------------------------------------------
# Two c1m.sh at once would share CPUs, ports and the sysctl state file. Lock and state
# live in a directory only this user can write (/run/c1m for root), never at a path
# another user could have prepared.
# A dry run changes nothing, so it needs neither.
STATE_DIR=$( ((dry_run)) || c1m_state_dir) || exit 1
LOCK="$STATE_DIR/lock"
STATE_FILE="$STATE_DIR/sysctl.saved"
if ((!dry_run)); then
    if [[ -e "$LOCK" || -L "$LOCK" ]]; then c1m_require_trusted "$LOCK" "regular file" || exit 1; fi
    { exec 9>>"$LOCK"; } 2>/dev/null || c1m_die "cannot open the lock file $LOCK"
    if ! flock -n 9; then
        c1m_log "another c1m.sh holds $LOCK; waiting for it (up to 20 minutes)"
        flock -w 1200 9 || c1m_die "gave up waiting for $LOCK"
    fi
fi

# --- Cleanup on every exit path --------------------------------------------------------
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/c1m.XXXXXX")
declare -A LIVE=() # pid (= process group id, every child runs under setsid) -> 1
TUNED=0
# Restore touches only the profile's keys and those of this run's --set.
RESTORE_ARGS=(--state "$STATE_FILE" --profile "$profile")
for s in "${sets[@]}"; do RESTORE_ARGS+=(--key "$(c1m_normalize "${s%%=*}")"); done
ALL_SPAWNED=()
TOUCHED_KEYS=()
FAILURES=()
CLEANED=0

# Sends SIG to the process groups PIDS..., waits up to TIMEOUT s for the leaders, then
# SIGKILLs what is left. Exit statuses land in RC[pid].
declare -A RC=()
stop_groups() {
    local sig=$1 timeout=$2 pid deadline left
    shift 2
    for pid in "$@"; do kill -s "$sig" -- "-$pid" 2>/dev/null || true; done
    deadline=$((SECONDS + timeout))
    while :; do
        left=0
        for pid in "$@"; do alive "$pid" && left=1; done
        ((left == 0 || SECONDS >= deadline)) && break
        sleep 0.1
    done
    for pid in "$@"; do
        if alive "$pid"; then
            c1m_warn "pid $pid did not stop on SIG$sig within ${timeout}s: SIGKILL"
        fi
        # The whole group: stragglers (loadgen workers) die with their leader.
        kill -KILL -- "-$pid" 2>/dev/null || true
        RC[$pid]=0
        wait "$pid" 2>/dev/null || RC[$pid]=$?
        unset "LIVE[$pid]"
    done
}

# True while PID runs (a zombie does not count).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ "${stat:0:1}" != Z ]]
}

cleanup() {
    local rc=$? pid clean=1
    ((CLEANED)) && return
    CLEANED=1
    trap '' INT TERM
    set +e
    if ((${#LIVE[@]} > 0)); then
        c1m_log "stopping ${#LIVE[@]} process group(s) still running: ${!LIVE[*]}"
        stop_groups TERM 10 "${!LIVE[@]}"
    fi
    if ((TUNED)); then
        c1m_log "restoring sysctls"
        "$SCRIPTS/sysctl-restore.sh" "${RESTORE_ARGS[@]}" || clean=0
        verify_sysctls || clean=0
    fi
    # Nothing we started may outlive us: check every process group we ever made.
    for pid in "${ALL_SPAWNED[@]}"; do
        if pgrep -g "$pid" >/dev/null 2>&1; then
            c1m_warn "process group $pid still had processes: killing them"
            kill -KILL -- "-$pid" 2>/dev/null || true
            clean=0
        fi
    done
    rm -rf "$TMPD"
    give_results_to_user
    if [[ -n "${WATCHDOG:-}" ]]; then
        kill -TERM -- "-$WATCHDOG" 2>/dev/null
        wait "$WATCHDOG" 2>/dev/null
    fi
    if ((clean == 0)); then
        c1m_warn "cleanup was not clean (see above): check sysctls and processes"
        ((rc != 0)) || rc=1
    elif [[ -n "${INTERRUPTED:-}" ]]; then
        c1m_log "interrupted; kernel and processes are back as they were"
    fi
    exit "$rc"
}
# Under sudo, every folder and file this run wrote belongs to the invoking user.
give_results_to_user() {
    [[ -n "${STAMP:-}" ]] || return 0
    local -a written
    shopt -s nullglob
    written=("$out_parent/$STAMP-$HOST"-*)
    shopt -u nullglob
    ((${OUT_CREATED:-0})) && written=("$out_parent")
    ((${#written[@]} == 0)) || c1m_give_to_user "${written[@]}"
}
on_signal() {
    INTERRUPTED=$1
    trap '' INT TERM
    c1m_warn "caught SIG$1: stopping runs, restoring the kernel"
    case "$1" in
        INT) exit 130 ;;
        HUP) exit 129 ;;
        *) exit 143 ;;
    esac
}
trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP
# If this script is SIGKILLed, nothing above runs: a watchdog in its own session (so a
# Ctrl-C does not reach it) then stops our process groups and restores the sysctls. It
# keeps the lock fd, so no other c1m.sh starts before it is done.
setsid "$SCRIPTS/c1m-watchdog.sh" "$$" "$TMPD" "${RESTORE_ARGS[@]}" </dev/null >/dev/null &
WATCHDOG=$!

snapshot_sysctls() { # snapshot FILE: KEY=VALUE of every touched key that exists
    local key
    : >"$1"
    for key in "${TOUCHED_KEYS[@]}"; do
        c1m_sysctl_exists "$key" && printf '%s=%s\n' "$key" "$(c1m_sysctl_get "$key")" >>"$1"
    done
    return 0
}
verify_sysctls() {
    snapshot_sysctls "$TMPD/sysctl.after"
    if cmp -s "$TMPD/sysctl.before" "$TMPD/sysctl.after"; then
        c1m_log "sysctls verified: all ${#TOUCHED_KEYS[@]} touched keys read exactly as before the run"
        return 0
    fi
    c1m_warn "sysctls differ from before the run:"
    diff "$TMPD/sysctl.before" "$TMPD/sysctl.after" >&2 || true
    return 1
}

# --- Build -------------------------------------------------------------------------------
cd "$ROOT"
if ((build && !dry_run)); then
    c1m_build "$cargo_arg" || exit 1
fi
((dry_run)) || [[ -x "$SERVER_BIN" && -x "$LOADGEN_BIN" ]] ||
    c1m_die "missing $SERVER_BIN or $LOADGEN_BIN (run without --no-build)"
command -v python3 >/dev/null || c1m_die "python3 is needed for the reports (scripts/c1m_report.py)"

# --- Preflight ---------------------------------------------------------------------------
c1m_preflight >"$TMPD/preflight.txt"
cat "$TMPD/preflight.txt" >&2
uring_disabled=$(c1m_sysctl_get kernel.io_uring_disabled 2>/dev/null || echo 0)
if [[ "$uring_disabled" == 2 ]] || { [[ "$uring_disabled" == 1 ]] && ! c1m_is_root; }; then
    c1m_die "io_uring is not available to this process (kernel.io_uring_disabled = $uring_disabled): the loadgen and the uring backends need it"
fi

if ((tune && !dry_run)) && ! c1m_is_root; then
    c1m_warn "not root: sysctls stay as they are (no --no-tune needed); the hold scenario is sized to what fits untuned"
    tune=0
fi

# ulimits: per process, so they need no restoring. The hard limit moves only with
# CAP_SYS_RESOURCE; the soft one up to the hard one always.
raise_ulimits() {
    local hard want nr_open
    nr_open=$(c1m_sysctl_get fs.nr_open 2>/dev/null || echo 1048576)
    want=$((nr_open < 1049600 ? nr_open : 1049600))
    hard=$(ulimit -Hn)
    if [[ "$hard" != unlimited ]] && ((hard < want)); then
        ulimit -Hn "$want" 2>/dev/null || true
    fi
    ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
    ulimit -Sl "$(ulimit -Hl)" 2>/dev/null || true
    c1m_log "ulimit -n now $(ulimit -Sn) (hard $(ulimit -Hn)), memlock $(ulimit -Sl) KiB"
}

# --- Tuning ------------------------------------------------------------------------------
if ! c1m_is_root && ((!dry_run)); then
    ((${#sets[@]} == 0)) || c1m_warn "not root: ignoring --set ${sets[*]}"
    sets=()
fi
apply_args=()
((tune)) && apply_args+=("$profile")
for s in "${sets[@]}"; do apply_args+=(--set "$s"); done
mapfile -t TOUCHED_KEYS < <({
    if ((tune)); then c1m_profile_entries "$profile" | sed 's/=.*//; s/^-//'; fi
    for s in "${sets[@]}"; do
        c1m_normalize "${s%%=*}"
        echo
    done
} | awk 'NF && !seen[$0]++')
if ((${#apply_args[@]} > 0 && !dry_run)); then
    [[ ! -f "$STATE_FILE" ]] || c1m_warn "$STATE_FILE is left from a run that did not restore; its saved values are the originals and will be restored at exit"
    snapshot_sysctls "$TMPD/sysctl.before"
    TUNED=1 # from here on the EXIT trap restores, whatever happens next
    : >"$TMPD/tuned"
    if ! "$SCRIPTS/sysctl-apply.sh" --state "$STATE_FILE" "${apply_args[@]}" 2>"$TMPD/sysctl-diff.txt"; then
        c1m_warn "some sysctls could not be applied (see the table below); running anyway"
    fi
    cat "$TMPD/sysctl-diff.txt" >&2
else
    {
        printf 'sysctls not changed (%s); current values:\n' "$(c1m_is_root && echo '--no-tune' || echo 'not root')"
        while IFS= read -r entry; do
            key=${entry%%=*}
            key=${key#-}
            if c1m_sysctl_exists "$key"; then printf '  %-40s %s\n' "$key" "$(c1m_sysctl_get "$key")"; fi
        done < <(c1m_profile_entries "$profile")
    } >"$TMPD/sysctl-diff.txt"
fi
raise_ulimits

# --- Machine split and scale -------------------------------------------------------------
expand_cpus() { # "0-3,8" -> "0 1 2 3 8"
    local part i
    local -a parts cpus=()
    IFS=, read -r -a parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ "$part" == *-* ]]; then
            for ((i = ${part%-*}; i <= ${part#*-}; i++)); do cpus+=("$i"); done
        else
            cpus+=("$part")
        fi
    done
    echo "${cpus[*]}"
}
read -r -a CPUS <<<"$(expand_cpus "$(cat /sys/devices/system/cpu/online 2>/dev/null || echo "0-$(($(c1m_cpu_count) - 1))")")"
ncpu=${#CPUS[@]}
if ((ncpu == 1)); then
    SERVER_CPUS=${CPUS[0]}
    LOADGEN_CPUS=${CPUS[0]}
    c1m_warn "one CPU: server and loadgen share it; numbers say little"
else
    half=$((ncpu / 2))
    SERVER_CPUS=$(IFS=,; echo "${CPUS[*]:0:half}")
    LOADGEN_CPUS=$(IFS=,; echo "${CPUS[*]:half}")
fi

if ((quick)); then
    DUR=${duration:-2}
    WARM=0.5
    PP_CONNS=(100 1000)
    LAT_CONNS=100
    CHURN_CONNS=50
    HOLD_N=${hold_conns:-5000}
else
    DUR=${duration:-5}
    WARM=1
    PP_CONNS=(100 1000 10000)
    LAT_CONNS=1000
    CHURN_CONNS=100
    if [[ -n "$hold_conns" ]]; then
        HOLD_N=$hold_conns
    else
        # Kernel ~7.6 KB per loopback connection (both sockets), plus server and loadgen
        # state: budget 16 KiB each and keep a quarter of the available memory free.
        avail_kb=$(c1m_meminfo_kb MemAvailable)
        HOLD_N=$((avail_kb * 3 / 4 / 16 / 1000 * 1000))
        HOLD_N=$((HOLD_N > 1000000 ? 1000000 : HOLD_N < 1000 ? 1000 : HOLD_N))
    fi
fi
# One heartbeat per connection every HB seconds: about 25k messages/s in all (1M
# connections: every 40 s), a fifth of what this class of machine echoes, so the hold
# measures holding, not load (at 50k/s the slower backends fell seconds behind).
HB=$(((HOLD_N + 24999) / 25000))
HOLD_DUR=$(awk -v d="$DUR" -v h="$HB" 'BEGIN { print (d > h ? d : h) }')

# Connections per (source address, server port) pair, after tuning. connect() looks for
# a free port among those of one parity first (half the range) and scans all of them
# before it tries the other half, so past about half the range every connect() walks
# ~30k ports and the ramp slows to a few hundred per second (seen: two source addresses
# stalled at 65k connections). Stay at 42% of the range: about 27k when tuned.
port_range=$(c1m_sysctl_get net.ipv4.ip_local_port_range)
if ((dry_run && tune)); then # the range the run would have after tuning
    port_range=$(c1m_profile_entries "$profile" | sed -n 's/^-\{0,1\}net\.ipv4\.ip_local_port_range=//p' | tail -n 1)
    port_range=${port_range:-$(c1m_sysctl_get net.ipv4.ip_local_port_range)}
fi
read -r port_lo port_hi <<<"$port_range"
PORTS_PER_PAIR=$(((port_hi - port_lo + 1) * 42 / 100))
# Connections one fd-per-connection server process may hold: RLIMIT_NOFILE less fds for
# listeners, rings, logs; 10% headroom. C1M_CONNS_PER_PROC overrides (for tests).
FD_CAP=$(($(ulimit -Sn) - 256))
CONNS_PER_PROC=${C1M_CONNS_PER_PROC:-$((FD_CAP * 9 / 10))}
MAX_PROCS=$((PORT_HI - PORT_LO + 1))

# procs_for BACKEND N -> server processes needed for N connections.
procs_for() {
    if [[ "$1" == uring ]]; then echo 1; return; fi
    local p=$((($2 + CONNS_PER_PROC - 1) / CONNS_PER_PROC))
    echo $((p > MAX_PROCS ? MAX_PROCS : p))
}
# Server RSS per held connection in KiB, rounded up from what hold.json showed on the
# reference machine at 5k-200k connections (uring ~1, epoll ~0.3, tokio ~10,
# tokio-uring ~17: a task and its buffers per connection). Only used to keep the hold
# scenario clear of the OOM killer.
server_kib_per_conn() {
    case "$1" in
        uring | epoll) echo 1 ;;
        tokio) echo 11 ;;
        *) echo 18 ;;
    esac
}
MEM_AVAIL_KB=$(c1m_meminfo_kb MemAvailable)
# mem_cap BACKEND -> connections that fit in 70% of the available memory: kernel ~9.5
# KiB per loopback connection (both sockets), loadgen ~0.5 KiB, plus the server's.
mem_cap() { echo $((MEM_AVAIL_KB * 7 / 10 / (10 + $(server_kib_per_conn "$1")) / 1000 * 1000)); }
# conns_for BACKEND N -> N, or less: what fits in memory, and for fd-per-connection
# backends what MAX_PROCS processes hold.
conns_for() {
    local n=$2 cap
    cap=$(mem_cap "$1")
    ((n > cap)) && n=$cap
    cap=$((MAX_PROCS * CONNS_PER_PROC))
    if [[ "$1" != uring ]] && ((n > cap)); then n=$cap; fi
    echo "$n"
}
# Why conns_for capped BACKEND at N (empty if it did not).
cap_reason() {
    local n=$2 why=""
    if ((n > $(mem_cap "$1"))); then
        why="memory: $(mem_cap "$1") connections fit in 70% of MemAvailable ($((MEM_AVAIL_KB / 1024)) MiB) at ~$((10 + $(server_kib_per_conn "$1"))) KiB each (kernel + loadgen + this server)"
    elif [[ "$1" != uring ]] && ((n > MAX_PROCS * CONNS_PER_PROC)); then
        why="$MAX_PROCS processes (ports $PORT_LO-$PORT_HI) x $CONNS_PER_PROC connections (RLIMIT_NOFILE $(ulimit -Sn) less headroom)"
    fi
    echo "$why"
}
# source_ips_for N TARGETS -> loadgen --source-ips value, or "" when one address will do.
source_ips_for() {
    local per_target=$((($1 + $2 - 1) / $2)) n
    n=$(((per_target + PORTS_PER_PAIR - 1) / PORTS_PER_PAIR))
    if ((n <= 1)); then return 0; fi
    if ((n > 250)); then c1m_die "$1 connections need $n source addresses; more than 127.0.0.2-127.0.0.251"; fi
    echo "127.0.0.2-127.0.0.$((n + 1))"
}

# --- Output folders ----------------------------------------------------------------------
HOST=$(hostname -s 2>/dev/null || hostname)
STAMP=$(date +%Y-%m-%d-%H%M)
if ((!dry_run)) && [[ ! -d "$out_parent" ]]; then
    mkdir -p "$out_parent"
    OUT_CREATED=1
fi
out_parent=$(realpath -m -- "$out_parent")
for n in "" -2 -3 -4 -5 -6 -7 -8 -9; do
    taken=0
    for s in "${SCENARIOS[@]}"; do [[ -e "$out_parent/$STAMP$n-$HOST-$s" ]] && taken=1; done
    ((taken)) || { STAMP="$STAMP$n"; break; }
done
scenario_dir() { echo "$out_parent/$STAMP-$HOST-$1"; }

# --- Plan --------------------------------------------------------------------------------
est=0
runs_per_backend=0
plan() {
    local b p c line
    printf 'plan (%s):\n' "$( ((quick)) && echo quick || echo full)"
    printf '  CPUs              server %s, loadgen %s (of %s online)\n' "$SERVER_CPUS" "$LOADGEN_CPUS" "$ncpu"
    printf '  backends          %s\n' "${BACKENDS[*]}"
    if has_scenario pingpong; then
        printf '  pingpong          closed loop, %s B, 1 in flight, %s conns; %s s (+%s s warm-up) per run\n' \
            "$MSG_SIZE" "${PP_CONNS[*]}" "$DUR" "$WARM"
        runs_per_backend=$((runs_per_backend + ${#PP_CONNS[@]}))
    fi
    if has_scenario latency; then
        printf '  latency           open loop at %s, %s conns; %s s (+%s s warm-up)\n' \
            "${rate:+$rate msgs/s}${rate:-half the slowest pingpong c1000 msgs/s (20000 if pingpong is not run)}" \
            "$LAT_CONNS" "$DUR" "$WARM"
        runs_per_backend=$((runs_per_backend + 1))
    fi
    if has_scenario hold; then
        line=""
        for b in "${BACKENDS[@]}"; do
            c=$(conns_for "$b" "$HOLD_N")
            p=$(procs_for "$b" "$c")
            line+=" $b:$c/$p"
        done
        printf '  hold              %s conns, heartbeat every %s s, held %s s; conns/server processes:%s\n' \
            "$HOLD_N" "$HB" "$HOLD_DUR" "$line"
        src=$(source_ips_for "$HOLD_N" 1)
        printf '                    (RLIMIT_NOFILE %s: up to %s conns per fd-per-connection process; uring: direct descriptors, --max-conns)\n' \
            "$(ulimit -Sn)" "$CONNS_PER_PROC"
        [[ -z "$src" ]] || printf '                    loadgen source addresses for one server port: %s\n' "$src"
        est=$((est + ${#BACKENDS[@]} * (HOLD_N / 20000 + ${HOLD_DUR%.*} + 4)))
    fi
    if has_scenario churn; then
        printf '  churn             %s concurrent connect/exchange/close loops; %s s (+%s s warm-up)\n' \
            "$CHURN_CONNS" "$DUR" "$WARM"
        runs_per_backend=$((runs_per_backend + 1))
    fi
    est=$((est + runs_per_backend * ${#BACKENDS[@]} * (${DUR%.*} + 3)))
    if ((TUNED)); then
        printf '  tuning            %s (restored at exit)\n' "${apply_args[*]}"
    elif ((dry_run && ${#apply_args[@]} > 0)); then
        printf '  tuning            would apply %s (restored at exit); state in /run/c1m when root\n' "${apply_args[*]}"
    else
        printf '  tuning            none\n'
    fi
    printf '  estimated time    about %s s\n' "$est"
    printf '  results           %s/%s-%s-{%s}\n' "$out_parent" "$STAMP" "$HOST" "$(IFS=,; echo "${SCENARIOS[*]}")"
}
plan >"$TMPD/plan.txt"
cat "$TMPD/plan.txt" >&2
if ((dry_run)); then
    c1m_log "--dry-run: nothing run"
    exit 0
fi

GIT_REV=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
GIT_DIRTY=$({ git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null || true; } | head -c1)
START_INUSE=$(c1m_tcp_inuse)

# Writes the folder's run.md: how this scenario was made, to re-run it.
describe_scenario() {
    local dir=$1 scenario=$2
    {
        printf '# %s: how this was made\n\n' "$scenario"
        # shellcheck disable=SC2016 # backquotes are markdown
        printf -- '- command: `%s`\n' "$invocation"
        printf -- '- git revision: %s%s\n' "$GIT_REV" "${GIT_DIRTY:+ (working tree had uncommitted changes)}"
        printf -- '- started: %s on %s\n' "$(date -u +%FT%TZ)" "$HOST"
        printf -- '- each run folder holds cmd.txt (the exact server and loadgen commands), summary.json (loadgen: environment, sysctls, rlimits), server.json and server.log\n\n'
        printf '```\n'
        cat "$TMPD/preflight.txt" "$TMPD/plan.txt"
        printf '\n'
        cat "$TMPD/sysctl-diff.txt"
        printf '```\n'
    } >"$dir/run.md"
}

# --- Running one case --------------------------------------------------------------------
# Server ports: PROCS consecutive ports in PORT_LO..PORT_HI that nothing listens on.
listening_ports() {
    awk 'FNR > 1 && $4 == "0A" { split($2, a, ":"); print strtonum("0x" a[2]) }' /proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -un
}
PORTS=()
pick_ports() {
    local count=$1 base p ok
    local -A busy=()
    for p in $(listening_ports); do busy[$p]=1; done
    for ((base = PORT_LO; base + count - 1 <= PORT_HI; base++)); do
        ok=1
        for ((p = base; p < base + count; p++)); do
            [[ -n "${busy[$p]+x}" ]] && { ok=0; base=$p; break; }
        done
        if ((ok)); then
            PORTS=()
            for ((p = base; p < base + count; p++)); do PORTS+=("$p"); done
            return 0
        fi
    done
    return 1
}

# Starts "$@" in its own session (so a Ctrl-C on the terminal reaches only this script,
# which then stops everything in order), without the lock fd.
spawn() {
    local stdout_file=$1 stderr_file=$2
    shift 2
    setsid "$@" >"$stdout_file" 2>"$stderr_file" </dev/null 9>&- &
    SPAWNED=$!
    LIVE[$SPAWNED]=1
    ALL_SPAWNED+=("$SPAWNED")
    echo "$SPAWNED" >>"$TMPD/pgids"
}

# wait_drained TIMEOUT [TARGET]: until the sockets of earlier runs are gone: TCP sockets
# in use are down to TARGET (default: where they were when c1m.sh started, + 1000), or
# have stopped falling for 3 s (other users' sockets).
wait_drained() {
    local timeout=$1 target=${2:-$((START_INUSE + 1000))} deadline=$((SECONDS + $1)) inuse low since=$SECONDS
    low=$(c1m_tcp_inuse)
    while :; do
        inuse=$(c1m_tcp_inuse)
        if ((inuse <= target)); then return 0; fi
        if ((inuse < low - 100)); then
            low=$inuse
            since=$SECONDS
        elif ((SECONDS - since >= 3)); then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            c1m_warn "$inuse TCP sockets still in use after ${timeout}s (waiting for $target); going on"
            return 0
        fi
        sleep 0.5
    done
}

# Kernel slab in use: "name active_bytes" per cache from /proc/slabinfo (root only;
# objects in use, so freed objects cached in partial slabs do not count), into FILE.
# Prints the total. Fails when /proc/slabinfo is not readable.
slab_snapshot() {
    [[ -r /proc/slabinfo ]] || return 1
    # %.0f: awk prints numbers past 2^31 as 2.1e+09 otherwise (1M connections: ~9 GB).
    awk 'NR > 2 { b = $2 * $4; t += b; if (b > 0) printf "%s %.0f\n", $1, b > out } END { printf "%.0f\n", t }' \
        out="$1" /proc/slabinfo
}

quote_cmd() { printf '%q ' "$@" | sed 's/ $//'; printf '\n'; }

# run_case SCENARIO_DIR NAME BACKEND CONNS MAX_CONNS_PER_PROC KIND LOADGEN_ARGS...
#   KIND: plain | hold (samples Slab and measures teardown)
# Never fails the script: a failed case leaves FAILED in its folder and is listed at
# the end.
run_case() {
    local sdir=$1 name=$2 backend=$3 conns=$4 maxc=$5 kind=$6
    shift 6
    local dir="$sdir/$name" procs i pdir suffix src deadline lg rc reason="" slab_before slab_peak slab t0=$SECONDS teardown
    local inuse_before inuse_peak=0 inuse sl_before=0 sl_peak=0 sl
    local -a spids=() targets=() scmd lcmd
    mkdir -p "$dir"
    echo "$name" >>"$sdir/runs.txt"
    procs=$(procs_for "$backend" "$conns")
    if ((procs > 1)); then
        pdir="$dir/server-procs"
        mkdir -p "$pdir"
        [[ -n "$maxc" ]] || maxc=$(((conns + procs - 1) / procs))
        maxc=$((maxc + (maxc / 50 > 64 ? maxc / 50 : 64)))
        maxc=$((maxc > FD_CAP ? FD_CAP : maxc))
    fi
    wait_drained "$([[ "$kind" == hold ]] && echo 180 || echo 30)"
    pick_ports "$procs" || { reason="no $procs free ports in $PORT_LO-$PORT_HI"; }
    : >"$dir/cmd.txt"
    slab_before=$(c1m_meminfo_kb Slab)
    inuse_before=$(c1m_tcp_inuse)
    if [[ "$kind" == hold ]]; then
        sl_before=$(slab_snapshot "$dir/slab-before.txt") || sl_before=0
        sl_peak=$sl_before
    fi
    if [[ -z "$reason" ]]; then
        for ((i = 0; i < procs; i++)); do
            if ((procs > 1)); then
                suffix=$(printf '%s/%03d' "$pdir" "$i")
            else
                suffix="$dir/server"
            fi
            scmd=("$SERVER_BIN" --backend "$backend" --listen "127.0.0.1:${PORTS[i]}" --cpus "$SERVER_CPUS"
                --stats-interval 1 --stats-json "$suffix.json")
            [[ -z "$maxc" ]] || scmd+=(--max-conns "$maxc")
            quote_cmd "${scmd[@]}" >>"$dir/cmd.txt"
            spawn "$suffix.out" "$suffix.log" "${scmd[@]}"
            spids+=("$SPAWNED")
            targets+=(--target "127.0.0.1:${PORTS[i]}")
        done
        # Ready when every server said "listening on".
        deadline=$((SECONDS + 20))
        for ((i = 0; i < procs; i++)); do
            if ((procs > 1)); then suffix=$(printf '%s/%03d' "$pdir" "$i"); else suffix="$dir/server"; fi
            until grep -q '^listening on' "$suffix.out" 2>/dev/null; do
                if ! alive "${spids[i]}"; then
                    reason="server did not start: $(tail -n 3 "$suffix.log" | tr '\n' ' ')"
                    break 2
                fi
                ((SECONDS < deadline)) || { reason="server not listening after 20 s"; break 2; }
                sleep 0.05
            done
        done
    fi
    if [[ -z "$reason" ]]; then
        src=$(source_ips_for "$conns" "$procs")
        lcmd=("$LOADGEN_BIN" run "${targets[@]}" --cpus "$LOADGEN_CPUS" --size "$MSG_SIZE"
            --label "$name${tag:+-$tag}" --out "$dir" "$@")
        [[ -z "$src" || " $* " == *" --source-ips "* ]] || lcmd+=(--source-ips "$src")
        quote_cmd "${lcmd[@]}" >>"$dir/cmd.txt"
        spawn "$dir/loadgen.out" "$dir/loadgen.log" "${lcmd[@]}"
        lg=$SPAWNED
        local tailpid=""
        if [[ -t 2 ]]; then
            tail -n +1 -f --pid="$lg" "$dir/loadgen.log" >&2 2>/dev/null &
            tailpid=$!
        fi
        # Ramp allowance: 1M connects take 20-60 s here; teardown of the previous run
        # may still be eating CPU.
        deadline=$((SECONDS + 60 + conns / 5000 + $(awk -v a="$DUR" -v b="$WARM" -v c="$HOLD_DUR" -v k="$kind" \
            'BEGIN { printf "%d", (k == "hold" ? c : a) + b + 1 }')))
        slab_peak=$slab_before
        while alive "$lg"; do
            if [[ "$kind" == hold ]]; then
                slab=$(c1m_meminfo_kb Slab)
                slab_peak=$((slab > slab_peak ? slab : slab_peak))
                inuse=$(c1m_tcp_inuse)
                inuse_peak=$((inuse > inuse_peak ? inuse : inuse_peak))
                if ((sl_before > 0)) && sl=$(slab_snapshot "$TMPD/slab-now.txt") && ((sl > sl_peak)); then
                    sl_peak=$sl
                    mv "$TMPD/slab-now.txt" "$dir/slab-peak.txt"
                fi
            fi
            if ((SECONDS >= deadline)); then
                reason="loadgen still running past its deadline; stopped"
                break
            fi
            sleep 0.5
        done
        stop_groups TERM 10 "$lg"
        t0=$SECONDS
        rc=${RC[$lg]}
        [[ -z "$tailpid" ]] || wait "$tailpid" 2>/dev/null || true
        if [[ -z "$reason" && "$rc" != 0 ]]; then
            reason="loadgen exit status $rc: $(grep -v '^\[' "$dir/loadgen.log" | tail -n 2 | tr '\n' ' ')"
        fi
    fi
    if ((${#spids[@]} > 0)); then
        stop_groups TERM 15 "${spids[@]}"
        for i in "${spids[@]}"; do
            [[ "${RC[$i]}" == 0 || -n "$reason" ]] || reason="server exit status ${RC[$i]}"
        done
    fi
    if ((procs > 1)) && [[ -d "$dir/server-procs" ]]; then
        "${REPORT[@]}" merge-server "$dir/server.json" "$dir"/server-procs/*.json 2>>"$dir/FAILED.tmp" ||
            reason=${reason:-"no server.json from any server process"}
    fi
    [[ -n "$reason" || -s "$dir/server.json" ]] || reason="server wrote no server.json"
    if [[ "$kind" == hold ]]; then
        # Teardown: until 98% of this run's 2 x conns sockets are gone.
        wait_drained 180 $((inuse_before + (conns / 25 > 100 ? conns / 25 : 100)))
        teardown=$((SECONDS - t0))
        "${REPORT[@]}" hold-json "$dir" "slab_before_kb=$slab_before" "slab_peak_kb=$slab_peak" \
            "slabinfo_before_bytes=$sl_before" "slabinfo_peak_bytes=$sl_peak" \
            "tcp_inuse_before=$inuse_before" "tcp_inuse_peak=$inuse_peak" \
            "teardown_s=$teardown" "server_processes=$procs" "connections_asked=$conns" \
            "heartbeat_s=$HB" || true
    fi
    rm -f "$dir/FAILED.tmp"
    if [[ -n "$reason" ]]; then
        printf '%s\n' "$reason" >"$dir/FAILED"
        FAILURES+=("$name ($(basename "$sdir")): $reason")
        c1m_warn "$name FAILED: $reason"
    else
        # The loadgen's one-line summary starts with its label.
        c1m_log "$(grep -h -F "$name${tag:+-$tag}: " "$dir/loadgen.out" "$dir/loadgen.log" | tail -n 1 | cut -c1-240)"
    fi
    return 0
}

# Runs folders (in run order) that have a summary.json, for compare.
ok_runs() { # ok_runs SCENARIO_DIR [PATTERN]
    local name
    while IFS= read -r name; do
        # shellcheck disable=SC2053 # $2 is a glob pattern
        [[ -z "${2:-}" || "$name" == $2 ]] || continue
        [[ -f "$1/$name/summary.json" ]] && echo "$1/$name"
    done <"$1/runs.txt"
    return 0
}

# compare_into SCENARIO_DIR MD SVG DIRS...: c1m-loadgen compare, table appended to MD.
compare_into() {
    local sdir=$1 md=$2 svg=$3
    shift 3
    if (($# == 0)); then
        printf 'No run produced results.\n\n' >>"$md"
        return 0
    fi
    if "$LOADGEN_BIN" compare "$@" --out "$TMPD/compare.md" --plot "$sdir/$svg" >/dev/null 2>"$TMPD/compare.err"; then
        # Paths in the table's notes are made relative to the scenario folder.
        sed "s#$sdir/##g" "$TMPD/compare.md" >>"$md"
        printf '\n![latency percentiles](%s)\n\n' "$svg" >>"$md"
    else
        printf 'c1m-loadgen compare failed: %s\n\n' "$(tr '\n' ' ' <"$TMPD/compare.err")" >>"$md"
        FAILURES+=("compare in $(basename "$sdir"): $(head -n 1 "$TMPD/compare.err")")
    fi
}

failed_note() { # lists FAILED runs of a scenario into its compare.md
    local sdir=$1 md=$2 name
    while IFS= read -r name; do
        [[ -f "$sdir/$name/FAILED" ]] && printf -- '- **%s failed**: %s\n' "$name" "$(cat "$sdir/$name/FAILED")" >>"$md"
    done <"$sdir/runs.txt"
    printf '\n' >>"$md"
}

procs_note() { # says which backends ran as several processes at N connections
    local n=$1 b p c note=""
    for b in "${BACKENDS[@]}"; do
        c=$(conns_for "$b" "$n")
        p=$(procs_for "$b" "$c")
        if ((p > 1)); then
            note+="- $b: $p server processes, one port each (127.0.0.1:$PORT_LO and up), $(((c + p - 1) / p)) connections each; RLIMIT_NOFILE is $(ulimit -Sn) here and this backend needs one fd per connection. server.json is the sum of server-procs/*.json.\n"
        fi
        if [[ "$(conns_for "$b" "$n")" != "$n" ]]; then
            note+="- $b: CAPPED at $(conns_for "$b" "$n") of $n connections by $(cap_reason "$b" "$n")\n"
        fi
    done
    [[ -z "$note" ]] || printf '%b\n' "$note"
}

# --- Scenarios -----------------------------------------------------------------------
start_scenario() { # creates the folder, prints its path (runs in a subshell)
    local s=$1 dir
    dir=$(scenario_dir "$s")
    mkdir -p "$dir"
    : >"$dir/runs.txt"
    describe_scenario "$dir" "$s"
    c1m_log "=== $s -> $dir"
    echo "$dir"
}

run_pingpong() {
    local sdir b c md
    local -a dirs
    sdir=$(start_scenario pingpong)
    for c in "${PP_CONNS[@]}"; do
        for b in "${BACKENDS[@]}"; do
            run_case "$sdir" "$b-c$c" "$b" "$c" "" plain \
                --connections "$c" --duration "$DUR" --warmup "$WARM"
        done
    done
    md="$sdir/compare.md"
    printf '# pingpong: closed loop, %s-byte messages, one in flight per connection\n\n' "$MSG_SIZE" >"$md"
    printf 'Server on CPU %s, loadgen on CPU %s; %s s measured after %s s warm-up. Compare backends by server CPU per message (steadier than msgs/s on a shared machine).\n\n' \
        "$SERVER_CPUS" "$LOADGEN_CPUS" "$DUR" "$WARM" >>"$md"
    failed_note "$sdir" "$md"
    for c in "${PP_CONNS[@]}"; do
        printf '## %s connections\n\n' "$c" >>"$md"
        procs_note "$c" >>"$md"
        mapfile -t dirs < <(ok_runs "$sdir" "*-c$c")
        compare_into "$sdir" "$md" "plot-c$c.svg" "${dirs[@]}"
    done
}

run_latency() {
    local sdir b md r="$rate" how pp
    local -a dirs
    if [[ -z "$r" ]]; then
        pp=$(scenario_dir pingpong)
        if [[ -f "$pp/runs.txt" ]] && mapfile -t dirs < <(ok_runs "$pp" "*-c1000") && ((${#dirs[@]} > 0)) &&
            r=$("${REPORT[@]}" rate 0.5 "${dirs[@]}" 2>/dev/null); then
            how="half of the slowest backend's closed-loop msgs/s at 1000 connections in $(basename "$pp")"
        else
            r=20000
            how="default (pingpong at 1000 connections was not run)"
        fi
    else
        how="given with --rate"
    fi
    c1m_log "latency: open loop at $r msgs/s ($how)"
    sdir=$(start_scenario latency)
    for b in "${BACKENDS[@]}"; do
        run_case "$sdir" "$b" "$b" "$LAT_CONNS" "" plain \
            --connections "$LAT_CONNS" --duration "$DUR" --warmup "$WARM" --rate "$r"
    done
    md="$sdir/compare.md"
    printf '# latency: open loop at %s msgs/s, %s connections\n\n' "$r" "$LAT_CONNS" >"$md"
    printf 'Rate: %s. Latency from the intended send time (coordinated omission corrected); %s s measured after %s s warm-up.\n\n' \
        "$how" "$DUR" "$WARM" >>"$md"
    failed_note "$sdir" "$md"
    procs_note "$LAT_CONNS" >>"$md"
    mapfile -t dirs < <(ok_runs "$sdir")
    compare_into "$sdir" "$md" "plot.svg" "${dirs[@]}"
}

run_hold() {
    local sdir b md maxc n
    local -a dirs
    sdir=$(start_scenario hold)
    for b in "${BACKENDS[@]}"; do
        maxc=""
        n=$(conns_for "$b" "$HOLD_N")
        # uring holds connections in fixed-file tables and adds rings itself past one
        # table's RLIMIT_NOFILE slots, when told how many to expect.
        if [[ "$b" == uring ]]; then maxc=$((n + n / 50 + 64)); fi
        run_case "$sdir" "$b" "$b" "$n" "$maxc" hold \
            --connections "$n" --duration "$HOLD_DUR" --heartbeat "$HB"
    done
    md="$sdir/compare.md"
    printf '# hold: %s connections, one %s-byte heartbeat per connection every %s s, held %s s\n\n' \
        "$HOLD_N" "$MSG_SIZE" "$HB" "$HOLD_DUR" >"$md"
    failed_note "$sdir" "$md"
    procs_note "$HOLD_N" >>"$md"
    mapfile -t dirs < <(ok_runs "$sdir")
    if ((${#dirs[@]} > 0)); then
        printf '## Holding\n\n' >>"$md"
        "${REPORT[@]}" section hold "${dirs[@]}" >>"$md" || true
        printf '\n## Heartbeat latency\n\n' >>"$md"
    fi
    compare_into "$sdir" "$md" "plot.svg" "${dirs[@]}"
}

run_churn() {
    local sdir b md
    local -a dirs
    sdir=$(start_scenario churn)
    for b in "${BACKENDS[@]}"; do
        # Closing from the client leaves its TIME_WAITs behind (60 s): spread them over
        # four source addresses of their own, so ports never run out and a hold run
        # right after (127.0.0.2 and up) does not find its ports taken.
        run_case "$sdir" "$b" "$b" "$CHURN_CONNS" "" plain \
            --connections "$CHURN_CONNS" --duration "$DUR" --warmup "$WARM" --churn \
            --source-ips 127.0.1.2-127.0.1.5
    done
    md="$sdir/compare.md"
    printf '# churn: %s concurrent loops of connect, one %s-byte exchange, close\n\n' "$CHURN_CONNS" "$MSG_SIZE" >"$md"
    failed_note "$sdir" "$md"
    mapfile -t dirs < <(ok_runs "$sdir")
    if ((${#dirs[@]} > 0)); then
        printf '## Connections\n\n' >>"$md"
        "${REPORT[@]}" section churn "${dirs[@]}" >>"$md" || true
        printf '\n## Exchange latency\n\n' >>"$md"
    fi
    compare_into "$sdir" "$md" "plot.svg" "${dirs[@]}"
}

T_START=$SECONDS
for s in "${SCENARIOS[@]}"; do
    "run_$s"
done

# --- Headline ----------------------------------------------------------------------------
HEADLINE="$out_parent/$STAMP-$HOST-headline.md"
mapfile -t SDIRS < <(for s in "${SCENARIOS[@]}"; do scenario_dir "$s"; done)
{
    printf '# c1m headline: %s on %s (%s)\n\n' "$STAMP" "$HOST" "$( ((quick)) && echo quick || echo full)"
    printf 'git %s%s; server CPU %s, loadgen CPU %s; %s. srv CPU µs/msg = server user+sys CPU / messages it echoed (warm-up and set-up included). Details: compare.md in each folder.\n\n' \
        "${GIT_REV:0:12}" "${GIT_DIRTY:+ (dirty)}" "$SERVER_CPUS" "$LOADGEN_CPUS" \
        "$( ((TUNED)) && echo "tuned: ${apply_args[*]#"$ROOT/"}" || echo "untuned")"
    "${REPORT[@]}" headline "${SDIRS[@]}"
    if ((${#FAILURES[@]} > 0)); then
        printf '\n**Failed runs:**\n\n'
        printf -- '- %s\n' "${FAILURES[@]}"
    fi
} >"$HEADLINE"
printf '\n'
cat "$HEADLINE"
printf '\n'
c1m_log "done in $((SECONDS - T_START)) s: $HEADLINE and $(for d in "${SDIRS[@]}"; do printf '%s ' "$(basename "$d")"; done)"
if ((${#FAILURES[@]} > 0)); then
    c1m_warn "${#FAILURES[@]} run(s) failed:"
    printf '  %s\n' "${FAILURES[@]}" >&2
    exit 1
fi
