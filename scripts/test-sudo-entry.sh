#!/usr/bin/env bash
# Runs scripts/c1m.sh the way `sudo scripts/c1m.sh` does on an ordinary machine: root
# with sudo's secure_path (no cargo on it), SUDO_USER set to a user this test creates,
# whose rustup toolchain is the only cargo in reach. Checks that --help needs no build,
# that a missing cargo is explained, that a quick run builds as that user and leaves
# target/ and results/ owned by them, and that --dry-run then needs no cargo and writes
# nothing. Needs root; skipped otherwise.
#
#   scripts/test-sudo-entry.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

if ! c1m_is_root || ! command -v useradd >/dev/null || ! unshare -m true 2>/dev/null; then
    echo "test-sudo-entry: skipped (needs root, useradd and mount namespaces)"
    exit 0
fi
cargo_bin=$(dirname -- "$(command -v cargo)") || c1m_die "no cargo on PATH to lend the test user"
rustup_home=$(rustup show home 2>/dev/null || printf '%s' "${RUSTUP_HOME:-$HOME/.rustup}")
cargo_home=${CARGO_HOME:-$HOME/.cargo}

USER_NAME="c1mt$((RANDOM % 10000))"
BASE=$(mktemp -d)
chmod 755 "$BASE"
HOME_DIR="$BASE/$USER_NAME"
FAILS=0
cleanup() {
    pkill -KILL -u "$USER_NAME" 2>/dev/null || true
    userdel "$USER_NAME" 2>/dev/null || true
    rm -rf "$BASE"
}
trap cleanup EXIT
useradd --home-dir "$HOME_DIR" --create-home --shell /bin/bash --user-group "$USER_NAME"
uid=$(id -u "$USER_NAME")
gid=$(id -g "$USER_NAME")

ok() { printf '  ok    %s\n' "$*"; }
bad() {
    printf '  FAIL  %s\n' "$*"
    FAILS=$((FAILS + 1))
}
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}

# The user's copy of the checkout (tracked and untracked files, no target/).
CHECKOUT="$HOME_DIR/c1m"
mkdir -p "$CHECKOUT"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -C "$CHECKOUT" -xf -
# Their own cargo home with the crates already downloaded (CI needs no network here).
mkdir -p "$HOME_DIR/.cargo/bin" "$HOME_DIR/.rustup"
[[ ! -d "$cargo_home/registry" ]] || cp -a "$cargo_home/registry" "$HOME_DIR/.cargo/"
chown -R "$uid:$gid" "$HOME_DIR"

# Exactly what sudo leaves: secure_path, root's HOME, the SUDO_* variables.
as_sudo() {
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        SUDO_USER="$USER_NAME" SUDO_UID="$uid" SUDO_GID="$gid" TERM=dumb LANG=C.UTF-8 "$@"
}

echo "== without any cargo in reach"
check "secure_path has no cargo (the test's premise)" bash -c '! env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin bash -c "command -v cargo" >/dev/null'
out=$(as_sudo "$CHECKOUT/scripts/c1m.sh" --help 2>&1) && rc=0 || rc=$?
check "--help works" bash -c "[ $rc = 0 ] && grep -q 'Usage: scripts/c1m.sh' <<<\"\$1\"" _ "$out"
out=$(as_sudo "$CHECKOUT/scripts/c1m.sh" --quick 2>&1) && rc=0 || rc=$?
check "a run says where it looked for cargo and how to fix it" \
    bash -c "[ $rc != 0 ] && grep -q 'no cargo found for $USER_NAME; looked in: $HOME_DIR/.cargo/bin/cargo' <<<\"\$1\" && grep -q rustup <<<\"\$1\"" _ "$out"
printf '%s\n' "$out" | grep 'cargo' | sed 's/^/        | /'

echo "== with the toolchain installed for $USER_NAME only (rustup in ~/.cargo, ~/.rustup)"
# A private mount namespace lends the machine's toolchain to the user's home, read-only;
# it disappears with the namespace.
cat >"$BASE/run.sh" <<EOF
set -e
mount --bind "$cargo_bin" "$HOME_DIR/.cargo/bin" && mount -o remount,bind,ro "$HOME_DIR/.cargo/bin"
mount --bind "$rustup_home" "$HOME_DIR/.rustup" && mount -o remount,bind,ro "$HOME_DIR/.rustup"
exec "\$@"
EOF
if as_sudo unshare -m bash "$BASE/run.sh" "$CHECKOUT/scripts/c1m.sh" --quick --duration 1 \
    --scenarios pingpong --backends uring >"$BASE/run.log" 2>&1; then
    ok "sudo scripts/c1m.sh --quick completes"
else
    bad "sudo scripts/c1m.sh --quick completes: $(tail -n 5 "$BASE/run.log")"
fi
check "  it built as $USER_NAME" grep -q "building release binaries as $USER_NAME" "$BASE/run.log"
check "  target/ exists" [ -x "$CHECKOUT/target/release/c1m-server" ]
not_theirs=$(find "$CHECKOUT/target" "$CHECKOUT/results" ! -user "$USER_NAME" -printf '%u %p\n' | head -n 5)
check "  every file in target/ and results/ belongs to $USER_NAME" [ -z "$not_theirs" ]
[[ -z "$not_theirs" ]] || printf '        | %s\n' "$not_theirs"
check "  a headline was written" bash -c "[ -n \"\$(find $CHECKOUT/results -name '*-headline.md' -newer $BASE/run.sh)\" ]"

echo "== --dry-run once built: no cargo needed, nothing written"
touch "$BASE/before-dry-run"
out=$(as_sudo "$CHECKOUT/scripts/c1m.sh" --dry-run --quick 2>&1) && rc=0 || rc=$?
check "--dry-run prints the plan without any cargo in reach" bash -c "[ $rc = 0 ] && grep -q '^plan' <<<\"\$1\"" _ "$out"
written=$(find "$CHECKOUT/results" "$CHECKOUT/target" -newer "$BASE/before-dry-run" | head -n 3)
check "  and writes nothing into the checkout" [ -z "$written" ]
[[ -z "$written" ]] || printf '        | %s\n' "$written"

if ((FAILS > 0)); then
    echo "test-sudo-entry: $FAILS check(s) failed; the run's log ends:"
    tail -n 20 "$BASE/run.log" 2>/dev/null | sed 's/^/        | /'
    exit 1
fi
echo "test-sudo-entry: all checks passed"
