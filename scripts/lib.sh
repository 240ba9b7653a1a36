# shellcheck shell=bash
# Helpers shared by the c1m scripts: logging, sysctl read/write, profile parsing,
# preflight facts. Sourced, not run; expects `set -euo pipefail` in the caller.

c1m_log() { printf 'c1m: %s\n' "$*" >&2; }
c1m_warn() { printf 'c1m: warning: %s\n' "$*" >&2; }
c1m_die() {
    printf 'c1m: error: %s\n' "$*" >&2
    exit 1
}

# One line per value: tabs and runs of blanks become one space, no leading/trailing
# blanks. sysctl prints multi-value keys with tabs ("1024\t65535"); the profile and the
# state file use single spaces, so values are compared in this form.
c1m_normalize() {
    local -a words
    read -r -a words <<<"${1//$'\t'/ }" || true
    printf '%s' "${words[*]}"
}

c1m_sysctl_path() { printf '/proc/sys/%s' "${1//.//}"; }

c1m_sysctl_exists() { [[ -f "$(c1m_sysctl_path "$1")" ]]; }

# Current value of KEY, normalised; fails if the key does not exist here.
c1m_sysctl_get() {
    local path raw
    path=$(c1m_sysctl_path "$1")
    [[ -r "$path" ]] || return 1
    raw=$(<"$path") || return 1
    c1m_normalize "$raw"
}

# Writes VALUE to KEY. Written to /proc/sys directly (not `sysctl -w`) so an empty value
# (ip_local_reserved_ports) round-trips the same way as any other.
c1m_sysctl_set() {
    local path
    path=$(c1m_sysctl_path "$1")
    { printf '%s\n' "$2" >"$path"; } 2>/dev/null
}

# Prints "KEY=VALUE" for each setting of a sysctl.conf-style file: `key = value` lines,
# `#` / `;` comments, a leading `-` on the key meaning "skip quietly if this kernel does
# not have the key" (as sysctl --system does). A "-" prefix is kept in the output.
c1m_profile_entries() {
    local file=$1 line key value
    while IFS= read -r line || [[ -n "$line" ]]; do
        line=$(c1m_normalize "$line")
        [[ -z "$line" || "$line" == \#* || "$line" == \;* ]] && continue
        if [[ "$line" != *=* ]]; then
            c1m_warn "$file: ignoring line without '=': $line"
            continue
        fi
        key=$(c1m_normalize "${line%%=*}")
        value=$(c1m_normalize "${line#*=}")
        printf '%s=%s\n' "$key" "$value"
    done <"$file"
}

# Reads a value from a "KEY=VALUE" state file (the last occurrence); fails if absent.
c1m_state_get() {
    local file=$1 key=$2 line found=1 value=""
    [[ -f "$file" ]] || return 1
    while IFS= read -r line || [[ -n "$line" ]]; do
        [[ "$line" == \#* || "$line" != *=* ]] && continue
        if [[ "${line%%=*}" == "$key" ]]; then
            value=${line#*=}
            found=0
        fi
    done <"$file"
    [[ $found -eq 0 ]] && printf '%s' "$value"
    return $found
}

# Prints a table "key | before | after" for the given keys, values from two
# "KEY=VALUE" files. Unchanged keys are marked "=".
c1m_print_diff() {
    local before_file=$1 after_file=$2 key b a mark
    shift 2
    printf '  %-40s %-28s %s\n' "key" "before" "after" >&2
    for key in "$@"; do
        b=$(c1m_state_get "$before_file" "$key" || printf '(absent)')
        a=$(c1m_state_get "$after_file" "$key" || printf '(absent)')
        mark="->"
        [[ "$b" == "$a" ]] && mark="= "
        printf '  %-40s %-28s %s %s\n' "$key" "'$b'" "$mark" "'$a'" >&2
    done
}

c1m_is_root() { [[ $(id -u) -eq 0 ]]; }

# --- Private state -------------------------------------------------------------------
# The sysctl state file and the lock live in a directory only this user can write, so
# that nobody else can plant a file that root would later read, restore or follow.

# Why PATH (of TYPE "directory" or "regular file") may not be trusted, or nothing:
# it must be that type (a symlink is not), owned by this user, and not writable by group
# or others. Uses lstat, so a symlink is never followed.
c1m_untrusted_reason() {
    local path=$1 want=$2 info type uid mode me
    me=$(id -u)
    info=$(stat -c '%F|%u|%a' -- "$path" 2>/dev/null) || { printf 'cannot be examined'; return 0; }
    IFS='|' read -r type uid mode <<<"$info"
    [[ "$type" == "regular empty file" ]] && type="regular file"
    if [[ "$type" != "$want" ]]; then
        printf 'is a %s, not a %s' "$type" "$want"
    elif [[ "$uid" != "$me" ]]; then
        printf 'is owned by uid %s, not by uid %s who runs this' "$uid" "$me"
    elif (((8#$mode & 8#022) != 0)); then
        printf 'is writable by group or others (mode %s)' "$mode"
    fi
    return 0
}

# Fails with a message unless PATH is a trusted TYPE (see c1m_untrusted_reason).
c1m_require_trusted() {
    local reason
    reason=$(c1m_untrusted_reason "$1" "$2")
    [[ -z "$reason" ]] && return 0
    printf 'c1m: error: refusing %s: it %s.\n' "$1" "$reason" >&2
    printf 'c1m: error: the kit keeps its state only where no other user can write; remove or fix %s and run again\n' "$1" >&2
    return 1
}

# Prints the kit's private state directory, creating it with mode 0700: $C1M_STATE_DIR if
# set; /run/c1m for root; else $XDG_RUNTIME_DIR/c1m; else ~/.cache/c1m.
c1m_state_dir() {
    local dir
    if [[ -n "${C1M_STATE_DIR:-}" ]]; then
        dir=$C1M_STATE_DIR
    elif c1m_is_root; then
        dir=/run/c1m
    elif [[ -n "${XDG_RUNTIME_DIR:-}" ]]; then
        dir=$XDG_RUNTIME_DIR/c1m
    else
        dir=${HOME:?HOME is not set}/.cache/c1m
    fi
    [[ "$dir" == /* ]] || { printf 'c1m: error: state directory %s is not an absolute path\n' "$dir" >&2; return 1; }
    # mkdir never follows a symlink in the last component; the check below refuses one.
    [[ -e "$dir" || -L "$dir" ]] || { mkdir -p -- "$(dirname -- "$dir")" && mkdir -m 700 -- "$dir"; } 2>/dev/null ||
        { printf 'c1m: error: cannot create the state directory %s\n' "$dir" >&2; return 1; }
    c1m_require_trusted "$dir" directory || return 1
    printf '%s' "$dir"
}

# Checks the state file STATE (given with --state or the default) before it is read or
# written: its directory must be trusted, and the file itself if it exists.
c1m_check_state_file() {
    local state=$1
    [[ "$state" == /* ]] || state="$PWD/$state"
    c1m_require_trusted "$(dirname -- "$state")" directory || return 1
    if [[ -e "$state" || -L "$state" ]]; then
        c1m_require_trusted "$state" "regular file" || return 1
    fi
    return 0
}

# Sysctl keys and values as the kit writes them: a key is dotted lowercase words, a
# value is numbers, words and separators; anything else in a state file is refused.
c1m_valid_key() { [[ "$1" =~ ^[a-z0-9_]+(\.[a-z0-9_-]+)+$ ]]; }
c1m_valid_value() { [[ "$1" =~ ^[A-Za-z0-9\ ,:._-]*$ ]]; }

# Prints the keys (no "-" prefix) of the profile files given, one per line.
c1m_profile_keys() {
    local file entry key
    for file in "$@"; do
        while IFS= read -r entry; do
            key=${entry%%=*}
            printf '%s\n' "${key#-}"
        done < <(c1m_profile_entries "$file")
    done
}

# --- Building as the invoking user ------------------------------------------------------
# Under sudo the build runs as SUDO_USER with that user's toolchain, so target/ belongs
# to them and root never needs a cargo of its own.

# The user the kit works for: SUDO_USER when root runs it through sudo, else nobody
# (prints nothing).
c1m_invoking_user() {
    if c1m_is_root && [[ -n "${SUDO_USER:-}" && "${SUDO_USER}" != root && "${SUDO_UID:-0}" != 0 ]]; then
        printf '%s' "$SUDO_USER"
    fi
}

# c1m_find_cargo USER HOME [GIVEN]: prints the cargo to use, or fails listing where it
# looked. GIVEN (--cargo) wins; then USER's rustup install; then cargo on PATH.
c1m_find_cargo() {
    local user=$1 home=$2 given=${3:-} found
    local -a looked=()
    if [[ -n "$given" ]]; then
        [[ -x "$given" && ! -d "$given" ]] && { printf '%s' "$given"; return 0; }
        c1m_warn "--cargo $given is not an executable file"
        return 1
    fi
    if [[ -n "$home" ]]; then
        looked+=("$home/.cargo/bin/cargo")
        [[ -x "$home/.cargo/bin/cargo" ]] && { printf '%s' "$home/.cargo/bin/cargo"; return 0; }
    fi
    looked+=("PATH ($PATH)")
    if found=$(command -v cargo 2>/dev/null) && [[ -n "$found" ]]; then
        printf '%s' "$found"
        return 0
    fi
    printf 'c1m: error: no cargo found for %s; looked in: %s\n' "$user" "${looked[*]}" >&2
    printf 'c1m: error: install Rust for %s with rustup (https://rustup.rs, as %s, not as root),\n' "$user" "$user" >&2
    printf 'c1m: error: or pass --cargo /path/to/cargo, or build first and run with --no-build\n' >&2
    return 1
}

# Builds the release binaries; under sudo as the invoking user. GIVEN_CARGO may be empty.
c1m_build() {
    local given=${1:-} user home cargo
    user=$(c1m_invoking_user)
    if [[ -z "$user" ]]; then
        cargo=$(c1m_find_cargo "$(id -un)" "${HOME:-}" "$given") || return 1
        c1m_log "building release binaries ($cargo build --release)"
        "$cargo" build --release --bins >&2 || { c1m_warn "cargo build --release failed"; return 1; }
        return 0
    fi
    home=$(getent passwd "$user" | cut -d: -f6)
    [[ -n "$home" ]] || { c1m_warn "SUDO_USER $user has no passwd entry"; return 1; }
    cargo=$(c1m_find_cargo "$user" "$home" "$given") || return 1
    if [[ -e target && "$(stat -c %u target)" != "${SUDO_UID}" ]]; then
        c1m_warn "target/ belongs to uid $(stat -c %u target), not to $user: it was built as another user."
        c1m_warn "fix it with: sudo chown -R $user: $PWD/target   (or remove it)"
        return 1
    fi
    c1m_log "building release binaries as $user ($cargo build --release); only the runs need root"
    # A clean environment for that user: their home (so rustup finds ~/.rustup) and a
    # PATH with their cargo's directory first (rustc, linker).
    runuser -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" \
        PATH="$(dirname -- "$cargo"):/usr/local/bin:/usr/bin:/bin" TERM="${TERM:-dumb}" \
        "$cargo" build --release --bins >&2 || { c1m_warn "cargo build --release (as $user) failed"; return 1; }
}

# --- The Go reference server (the opt-in `go` backend) -----------------------------------

# The go binary for USER with HOME: go on PATH, else the usual install places.
c1m_find_go() {
    local home=$1 g
    for g in "$(command -v go 2>/dev/null || true)" /usr/lib/go/bin/go /usr/local/go/bin/go "$home/go/bin/go" "$home/sdk/go/bin/go"; do
        [[ -n "$g" && -x "$g" && ! -d "$g" ]] && { printf '%s' "$g"; return 0; }
    done
    return 1
}

# Builds references/go-net/bin/c1m-go-net with the distribution's Go (stdlib only, no
# module downloads: GOPROXY=off); under sudo as the invoking user, like cargo.
c1m_build_go() {
    local user home go dir=references/go-net
    user=$(c1m_invoking_user)
    if [[ -n "$user" ]]; then home=$(getent passwd "$user" | cut -d: -f6); else home=${HOME:-}; fi
    if ! go=$(c1m_find_go "$home"); then
        c1m_warn "the go backend needs Go, which is not installed: sudo scripts/setup.sh installs the"
        c1m_warn "distribution's golang-go (apt-get install golang-go; any Go >= 1.19 works)"
        return 1
    fi
    if [[ -z "$user" ]]; then
        c1m_log "building $dir/bin/c1m-go-net ($go build)"
        (cd "$dir" && GOPROXY=off GOFLAGS=-trimpath "$go" build -o bin/c1m-go-net .) >&2 ||
            { c1m_warn "go build in $dir failed"; return 1; }
        return 0
    fi
    if [[ -e "$dir/bin" && "$(stat -c %u "$dir/bin")" != "${SUDO_UID}" ]]; then
        c1m_warn "$dir/bin belongs to uid $(stat -c %u "$dir/bin"), not to $user: fix it with: sudo chown -R $user: $PWD/$dir/bin"
        return 1
    fi
    c1m_log "building $dir/bin/c1m-go-net as $user ($go build)"
    (cd "$dir" && runuser -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" \
        PATH="$(dirname -- "$go"):/usr/local/bin:/usr/bin:/bin" GOPROXY=off GOFLAGS=-trimpath \
        "$go" build -o bin/c1m-go-net .) >&2 || { c1m_warn "go build in $dir (as $user) failed"; return 1; }
}

# True if the comma list of a --backends option among ARGS names go.
c1m_wants_go() {
    local list=""
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --backends) list=${2:-} ; shift ;;
            --backends=*) list=${1#*=} ;;
        esac
        shift
    done
    [[ ",$list," == *,go,* ]]
}

# Hands PATHS (files or folders the run wrote) to the invoking user under sudo, without
# following symlinks; nothing to do otherwise.
c1m_give_to_user() {
    local user
    user=$(c1m_invoking_user)
    [[ -n "$user" && $# -gt 0 ]] || return 0
    chown -R -h -P "${SUDO_UID}:${SUDO_GID:-$SUDO_UID}" -- "$@" 2>/dev/null ||
        c1m_warn "could not give $* to $user"
}
