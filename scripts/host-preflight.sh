#!/usr/bin/env bash
# host-preflight.sh: facts about this machine as KEY=VALUE lines, for `--topology hosts`
# (c1m-bench runs it on every host with `ssh HOST bash -s < scripts/host-preflight.sh`,
# before anything is copied there). Reads only; changes nothing.
set -euo pipefail

# The path of program $1 (on PATH, /usr/sbin or /sbin), or "absent".
program() {
    local p
    p=$(command -v "$1" 2>/dev/null || true)
    if [[ -z "$p" ]]; then
        for p in "/usr/sbin/$1" "/sbin/$1" ""; do
            [[ -z "$p" || -x "$p" ]] && break
        done
    fi
    printf '%s' "${p:-absent}"
}

preflight() {
    local hard raise=no
    hard=$(ulimit -Hn)
    if [[ "$hard" == unlimited ]] || (ulimit -Hn $((hard + 1))) 2>/dev/null; then raise=yes; fi
    printf 'kernel=%s\n' "$(uname -r)"
    printf 'arch=%s\n' "$(uname -m)"
    printf 'io_uring_disabled=%s\n' "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo absent)"
    printf 'nofile_soft=%s\nnofile_hard=%s\nnofile_raise=%s\n' "$(ulimit -Sn)" "$hard" "$raise"
    printf 'mem_available_kb=%s\n' "$(sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
    printf 'cpus=%s\n' "$(cat /sys/devices/system/cpu/online)"
    printf 'uid=%s\n' "$(id -u)"
    printf 'sudo=%s\n' "$( (sudo -n true) >/dev/null 2>&1 && echo yes || echo no)"
    printf 'boot_id=%s\n' "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)"
    printf 'hostname=%s\n' "$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)"
    # The outside programs of the http scenario (not shipped: sudo scripts/setup.sh).
    local nginx
    nginx=$(program nginx)
    printf 'nginx=%s\nwrk=%s\ntaskset=%s\n' "$nginx" "$(program wrk)" "$(program taskset)"
    if [[ "$nginx" != absent ]]; then
        printf 'nginx_build=%s\n' "$("$nginx" -V 2>&1 | tr '\n' ' ' || true)"
    fi
}

preflight
