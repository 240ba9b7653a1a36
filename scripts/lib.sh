# shellcheck shell=bash
# Helpers shared by the c1m scripts: logging, sysctl read/write, profile parsing,
# preflight facts. Sourced, not run; expects `set -euo pipefail` in the caller.

# Where sysctl-apply.sh saves the original values (read by the scripts that source this).
# shellcheck disable=SC2034
C1M_STATE_FILE_DEFAULT="${XDG_RUNTIME_DIR:-/tmp}/c1m-sysctl.saved"

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

c1m_cpu_count() { nproc 2>/dev/null || getconf _NPROCESSORS_ONLN; }

c1m_meminfo_kb() { awk -v k="$1:" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }' /proc/meminfo; }

# TCP sockets in use (not TIME_WAIT), from /proc/net/sockstat.
c1m_tcp_inuse() { awk '$1 == "TCP:" { print $3 }' /proc/net/sockstat; }

# True if this process may raise its RLIMIT_NOFILE hard limit (needs CAP_SYS_RESOURCE).
c1m_can_raise_nofile_hard() {
    local hard
    hard=$(ulimit -Hn)
    [[ "$hard" == unlimited ]] && return 0
    (ulimit -Hn $((hard + 1))) 2>/dev/null
}

# The facts that decide what a run can do here; printed before every run.
c1m_preflight() {
    local kernel disabled root nofile_s nofile_h raise cpus mem_total mem_avail load memlock
    kernel=$(uname -r)
    disabled=$(c1m_sysctl_get kernel.io_uring_disabled 2>/dev/null || printf 'absent (io_uring allowed)')
    if c1m_is_root; then root="yes (uid 0)"; else root="no (uid $(id -u)): kernel tuning will be skipped"; fi
    nofile_s=$(ulimit -Sn)
    nofile_h=$(ulimit -Hn)
    if c1m_can_raise_nofile_hard; then
        raise="hard limit can be raised (CAP_SYS_RESOURCE)"
    elif [[ "$nofile_s" != "$nofile_h" ]]; then
        raise="soft can be raised to the hard limit; hard cannot"
    else
        raise="cannot be raised (no CAP_SYS_RESOURCE): fd-per-connection backends use several processes"
    fi
    memlock=$(ulimit -l)
    cpus=$(c1m_cpu_count)
    mem_total=$(c1m_meminfo_kb MemTotal)
    mem_avail=$(c1m_meminfo_kb MemAvailable)
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    printf 'preflight:\n'
    printf '  kernel              %s\n' "$kernel"
    case "$disabled" in
        0) printf '  io_uring            enabled (kernel.io_uring_disabled = 0)\n' ;;
        1) printf '  io_uring            restricted to root / io_uring_group (kernel.io_uring_disabled = 1)\n' ;;
        2) printf '  io_uring            DISABLED (kernel.io_uring_disabled = 2): uring backends cannot run\n' ;;
        *) printf '  io_uring            %s\n' "$disabled" ;;
    esac
    printf '  root                %s\n' "$root"
    printf '  RLIMIT_NOFILE       soft %s, hard %s: %s\n' "$nofile_s" "$nofile_h" "$raise"
    printf '  RLIMIT_MEMLOCK      %s KiB\n' "$memlock"
    printf '  fs.nr_open          %s\n' "$(c1m_sysctl_get fs.nr_open 2>/dev/null || echo '?')"
    printf '  CPUs online         %s (%s)\n' "$cpus" "$(cat /sys/devices/system/cpu/online 2>/dev/null || echo '?')"
    printf '  memory              %s MiB total, %s MiB available\n' $((mem_total / 1024)) $((mem_avail / 1024))
    printf '  load average        %s (other processes share the CPUs: compare CPU per message, not msgs/s)\n' "$load"
}
