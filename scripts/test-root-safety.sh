#!/usr/bin/env bash
# Root-safety tests of scripts/c1m.sh and the sysctl tools: nothing another user can
# write is trusted (state files, lock, directories, symlinks), restore applies only the
# kit's own keys, and a normal run, a Ctrl-C and a SIGKILL all restore the kernel.
# Needs root and the `nobody` user (it plays the other user); skipped otherwise.
#
#   scripts/test-root-safety.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

if ! c1m_is_root || ! id nobody >/dev/null 2>&1; then
    echo "test-root-safety: skipped (needs root and a user named nobody)"
    exit 0
fi
[[ -x target/release/c1m-server && -x target/release/c1m-loadgen ]] ||
    c1m_die "build first: cargo build --release"

BAIT=net.ipv4.tcp_keepalive_time # not a key the kit applies
BAIT_ORIG=$(c1m_sysctl_get "$BAIT")
BASE=$(mktemp -d)
chmod 755 "$BASE" # nobody must reach the folders it plants
FAILS=0
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true; done
    c1m_sysctl_set "$BAIT" "$BAIT_ORIG" || true
    rm -rf "$BASE"
    rm -f /tmp/c1m-sysctl.saved.test-planted
}
trap cleanup EXIT

ok() { printf '  ok    %s\n' "$*"; }
bad() {
    printf '  FAIL  %s\n' "$*"
    FAILS=$((FAILS + 1))
}
check() { # check DESCRIPTION COMMAND...: ok when COMMAND succeeds
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
as_nobody() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- "$@"; }
bait_untouched() { [[ "$(c1m_sysctl_get "$BAIT")" == "$BAIT_ORIG" ]]; }
profile_snapshot() { # KEY=VALUE of every profile key present, in a fixed order
    local key
    while IFS= read -r key; do
        c1m_sysctl_exists "$key" && printf '%s=%s\n' "$key" "$(c1m_sysctl_get "$key")"
    done < <(c1m_profile_keys sysctl/c1m.conf)
    return 0
}
# A c1m-server or c1m-loadgen of this checkout runs (the kit starts them from the
# repository with relative paths, so they are told apart by their working directory).
ours_running() {
    local pid
    for pid in $(pgrep -f '(^|/)target/release/c1m-(server|loadgen)'); do
        [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$ROOT" ]] && return 0
    done
    return 1
}
none_left() { ! ours_running; }
# A private state directory for one test (root-owned, 0700).
private_dir() {
    local d="$BASE/$1"
    mkdir -m 700 "$d"
    printf '%s' "$d"
}
planted_state() { # planted_state FILE: the line an attacker would plant
    printf '%s=7777\nkernel.core_pattern=|/bin/false\n' "$BAIT" >"$1"
}

echo "== planted state files are refused, nothing in them applied"
d=$(private_dir planted)
planted_state "$d/sysctl.saved"
chown nobody "$d/sysctl.saved"
out=$(C1M_STATE_DIR=$d scripts/sysctl-restore.sh 2>&1) && rc=0 || rc=$?
check "restore exits 1 on a state file owned by nobody" [ "$rc" = 1 ]
check "  and says whose it is" grep -q "owned by uid $(id -u nobody)" <<<"$out"
check "  and says how to restore by hand" grep -q "sysctl -w" <<<"$out"
check "  and applies nothing" bait_untouched
check "  and leaves the file in place" [ -f "$d/sysctl.saved" ]
printf '%s\n' "$out" | sed 's/^/        | /'
out=$(C1M_STATE_DIR=$d scripts/sysctl-apply.sh --set "net.core.somaxconn=$(c1m_sysctl_get net.core.somaxconn)" 2>&1) && rc=0 || rc=$?
check "apply refuses the same state file and changes nothing (exit 3)" [ "$rc" = 3 ]

mkdir "$BASE/nobodys-home"
chown nobody "$BASE/nobodys-home"
d="$BASE/nobodys-home/state"
as_nobody mkdir -m 700 "$d"
as_nobody sh -c "printf '%s=7777\n' $BAIT >$d/sysctl.saved"
out=$(C1M_STATE_DIR=$d scripts/sysctl-restore.sh 2>&1) && rc=0 || rc=$?
check "restore refuses a state directory owned by nobody" [ "$rc" = 1 ]
check "  naming the directory" grep -q "refusing $d: it is owned by uid" <<<"$out"
check "  and applies nothing" bait_untouched
out=$(C1M_STATE_DIR=$d scripts/c1m.sh --no-build --quick --scenarios pingpong --backends uring 2>&1) && rc=0 || rc=$?
check "c1m.sh refuses it too, before doing anything" bash -c "[ $rc = 1 ] && grep -q 'refusing the state directory $d: it is owned by uid' <<<\"\$1\"" _ "$out"
printf '%s\n' "$out" | tail -n 2 | sed 's/^/        | /'

d=$(private_dir open)
chmod 777 "$d"
out=$(C1M_STATE_DIR=$d scripts/sysctl-restore.sh 2>&1) && rc=0 || rc=$?
check "restore refuses a world-writable state directory" grep -q "writable by group or others (mode 777)" <<<"$out"

d=$(private_dir foreign-keys)
planted_state "$d/sysctl.saved"
chmod 600 "$d/sysctl.saved"
c1m_sysctl_set "$BAIT" 7000
out=$(C1M_STATE_DIR=$d scripts/sysctl-restore.sh 2>&1) && rc=0 || rc=$?
check "a trusted state file with keys the kit does not apply: exit 1" [ "$rc" = 1 ]
check "  those keys are not applied" [ "$(c1m_sysctl_get "$BAIT")" = 7000 ]
core_pattern_untouched() { [[ "$(cat /proc/sys/kernel/core_pattern)" != "|/bin/false" ]]; }
check "  core_pattern is not touched" core_pattern_untouched
check "  the lines are listed as refused" grep -q "kernel.core_pattern=|/bin/false" <<<"$out"
c1m_sysctl_set "$BAIT" "$BAIT_ORIG"

d=$(private_dir set-key)
C1M_STATE_DIR=$d scripts/sysctl-apply.sh --set "$BAIT=7001" >/dev/null 2>&1
check "apply --set KEY writes it" [ "$(c1m_sysctl_get "$BAIT")" = 7001 ]
C1M_STATE_DIR=$d scripts/sysctl-restore.sh --key "$BAIT" >/dev/null 2>&1 && rc=0 || rc=$?
check "restore --key KEY puts it back and removes the state" bash -c "[ $rc = 0 ] && [ ! -e $d/sysctl.saved ]"
check "  to the original value" bait_untouched
out=$(C1M_STATE_DIR=$d scripts/sysctl-apply.sh --set 'kernel.core_pattern=|/bin/false' 2>&1) && rc=0 || rc=$?
check "apply refuses a value the kit never writes (exit 3)" bash -c "[ $rc = 3 ] && grep -q 'has characters' <<<\"\$1\"" _ "$out"
out=$(C1M_STATE_DIR=$d scripts/sysctl-apply.sh --set "$BAIT=7004" --set net.ipv4.tcp_no_delay=1 2>&1) && rc=0 || rc=$?
check "apply refuses a --set key this kernel lacks (exit 3), naming it" bash -c "[ $rc = 3 ] && grep -q 'net.ipv4.tcp_no_delay: this kernel has no such sysctl' <<<\"\$1\"" _ "$out"
check "  and applies nothing, not even the good key" bait_untouched
C1M_STATE_DIR=$d scripts/sysctl-apply.sh --set "-$BAIT=7005" --set -net.ipv4.tcp_no_delay=1 >/dev/null 2>&1 && rc=0 || rc=$?
check "an optional -KEY is applied, a missing optional one skipped" bash -c "[ $rc = 0 ] && [ \"\$(cat /proc/sys/${BAIT//.//})\" = 7005 ]"
C1M_STATE_DIR=$d scripts/sysctl-restore.sh --key "$BAIT" >/dev/null 2>&1
check "  and restored by its key without the -" bait_untouched

echo "== symlinks at the kit's paths are not followed"
d="$BASE/linkdir"
mkdir -m 700 "$BASE/linked-target"
ln -s "$BASE/linked-target" "$d"
out=$(C1M_STATE_DIR=$d scripts/sysctl-apply.sh --set "$BAIT=7002" 2>&1) && rc=0 || rc=$?
check "a symlinked state directory is refused" bash -c "[ $rc = 3 ] && grep -q 'is a symbolic link' <<<\"\$1\"" _ "$out"
check "  and nothing is applied" bait_untouched
d=$(private_dir linkstate)
ln -s "$BASE/victim-state" "$d/sysctl.saved"
out=$(C1M_STATE_DIR=$d scripts/sysctl-apply.sh --set "$BAIT=7003" 2>&1) && rc=0 || rc=$?
check "a symlinked state file is refused" bash -c "[ $rc = 3 ] && [ ! -e $BASE/victim-state ]"
check "  and nothing is applied" bait_untouched
d=$(private_dir linklock)
ln -s "$BASE/victim-lock" "$d/lock"
out=$(C1M_STATE_DIR=$d scripts/c1m.sh --no-build --quick --scenarios pingpong --backends uring 2>&1) && rc=0 || rc=$?
check "a symlinked lock is refused and its target not created" bash -c "[ $rc = 1 ] && [ ! -e $BASE/victim-lock ] && grep -q 'refusing the lock file $d/lock: it is a symlink' <<<\"\$1\"" _ "$out"
printf '%s\n' "$out" | tail -n 2 | sed 's/^/        | /'

echo "== the old fixed /tmp paths mean nothing any more"
planted=0
if [[ ! -e /tmp/c1m-sysctl.saved && ! -e /tmp/c1m.lock ]]; then
    as_nobody sh -c "printf '%s=7777\n' $BAIT >/tmp/c1m-sysctl.saved && ln -s $BASE/nologin-victim /tmp/c1m.lock"
    planted=1
fi
before=$(profile_snapshot)
out_dir="$BASE/results"
mkdir "$out_dir"
if scripts/c1m.sh --no-build --quick --duration 1 --scenarios pingpong --backends uring --out "$out_dir" >"$BASE/normal.log" 2>&1; then
    ok "a normal quick run completes"
else
    bad "a normal quick run completes (log: $(tail -n 3 "$BASE/normal.log" | tr '\n' ' '))"
fi
check "  every profile sysctl reads as before" [ "$before" = "$(profile_snapshot)" ]
check "  no server or loadgen is left" none_left
if ((planted)); then
    check "  the value planted in /tmp/c1m-sysctl.saved was not applied" bait_untouched
    check "  the /tmp/c1m.lock symlink was not followed" [ ! -e "$BASE/nologin-victim" ]
    rm -f /tmp/c1m-sysctl.saved /tmp/c1m.lock
fi

# interrupted SIGNAL: starts a run, signals c1m.sh once it has tuned, checks the cleanup.
interrupted() {
    local sig=$1 d pid deadline before rc
    d=$(private_dir "sig$sig")
    before=$(profile_snapshot)
    set -m # a job of its own: background jobs of a script otherwise ignore SIGINT
    C1M_STATE_DIR=$d scripts/c1m.sh --no-build --quick --scenarios pingpong --backends uring,epoll \
        --out "$out_dir" >"$BASE/sig$sig.log" 2>&1 &
    pid=$!
    set +m
    PIDS+=("$pid")
    deadline=$((SECONDS + 60))
    until [[ -e "$d/sysctl.saved" ]] && ours_running; do
        ((SECONDS < deadline)) || { bad "SIG$sig: the run never got going"; return; }
        sleep 0.2
    done
    sleep 1
    kill -s "$sig" "$pid"
    rc=0
    wait "$pid" || rc=$?
    deadline=$((SECONDS + 60)) # after SIGKILL the watchdog does the cleanup
    while [[ -e "$d/sysctl.saved" ]] || ours_running; do
        ((SECONDS < deadline)) || break
        sleep 0.5
    done
    [[ "$sig" != INT ]] || check "SIGINT: c1m.sh exits 130" [ "$rc" = 130 ]
    check "SIG$sig: every profile sysctl reads as before" [ "$before" = "$(profile_snapshot)" ]
    check "SIG$sig: the state file is gone (restored)" [ ! -e "$d/sysctl.saved" ]
    check "SIG$sig: no server or loadgen is left" none_left
}
echo "== Ctrl-C and SIGKILL mid-run restore everything"
interrupted INT
interrupted KILL

if ((FAILS > 0)); then
    echo "test-root-safety: $FAILS check(s) failed"
    exit 1
fi
echo "test-root-safety: all checks passed"
