#!/usr/bin/env bash
# Puts back the sysctl values that scripts/sysctl-apply.sh saved, checks each one reads
# back as saved, prints a before/after table, and removes the state file once every key
# is restored (it is kept, and the exit status is 1, if any key could not be).
#
#   scripts/sysctl-restore.sh [--state FILE]
#
# Nothing to do (exit 0) if there is no state file.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"

state="${C1M_STATE_FILE:-$C1M_STATE_FILE_DEFAULT}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --state) state=${2:?--state needs a file}; shift 2 ;;
        --state=*) state=${1#*=}; shift ;;
        # Accepted for c1m-bench; this version restores every key of the state file.
        --profile | --key) : "${2:?$1 needs a value}"; shift 2 ;;
        -h | --help) sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) printf 'sysctl-restore.sh: unknown argument %s\n' "$1" >&2; exit 2 ;;
    esac
done

if [[ ! -f "$state" ]]; then
    c1m_log "no saved sysctl state at $state: nothing to restore"
    exit 0
fi

keys=()
declare -A saved=()
while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" == \#* || "$line" != *=* ]] && continue
    key=${line%%=*}
    [[ -n "${saved[$key]+set}" ]] || keys+=("$key")
    saved[$key]=${line#*=}
done <"$state"

before=$(mktemp)
after=$(mktemp)
trap 'rm -f "$before" "$after"' EXIT
status=0
# Restore in reverse order of application (ip_local_port_range before the reserved
# ports it relied on, and so on).
for ((i = ${#keys[@]} - 1; i >= 0; i--)); do
    key=${keys[$i]}
    value=${saved[$key]}
    now=$(c1m_sysctl_get "$key" || printf '(absent)')
    printf '%s=%s\n' "$key" "$now" >>"$before"
    if [[ "$now" != "$value" ]] && ! c1m_sysctl_set "$key" "$value"; then
        c1m_warn "could not restore $key = '$value'"
    fi
    now=$(c1m_sysctl_get "$key" || printf '(absent)')
    printf '%s=%s\n' "$key" "$now" >>"$after"
    if [[ "$now" != "$value" ]]; then
        c1m_warn "$key is '$now', saved value was '$value'"
        status=1
    fi
done

c1m_log "restored ${#keys[@]} sysctls from $state"
c1m_print_diff "$before" "$after" "${keys[@]}"
if [[ $status -eq 0 ]]; then
    rm -f "$state"
else
    c1m_warn "kept $state: fix the keys above and run scripts/sysctl-restore.sh again"
fi
exit $status
