#!/usr/bin/env bash
# host-preflight.sh: facts about this machine as KEY=VALUE lines, for `--topology hosts`
# (c1m-bench runs it on every host with `ssh HOST bash -s < scripts/host-preflight.sh`,
# before anything is copied there). Reads only; changes nothing.
set -euo pipefail

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
}

preflight
