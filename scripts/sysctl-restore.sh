#!/usr/bin/env bash
# Puts back the sysctl values that scripts/sysctl-apply.sh saved, checks each one reads
# back as saved, prints a before/after table, and removes the state file once every key
# is restored (it is kept, and the exit status is 1, if any key could not be).
#
#   scripts/sysctl-restore.sh [--state FILE] [--profile FILE]... [--key KEY]...
#
# Only keys the kit applies are restored: those of sysctl/c1m.conf, of each --profile
# and each --key (give the --set keys of the apply being undone). Any other key in the
# state file is refused, as is a state file or directory that another user could have
# written (then nothing is restored and the file is left in place).
# Nothing to do (exit 0) if there is no state file.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"

state="${C1M_STATE_FILE:-}"
profiles=("$here/../sysctl/c1m.conf")
declare -A allowed=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --state) state=${2:?--state needs a file}; shift 2 ;;
        --state=*) state=${1#*=}; shift ;;
        --profile) profiles+=("${2:?--profile needs a file}"); shift 2 ;;
        --profile=*) profiles+=("${1#*=}"); shift ;;
        --key) allowed[${2:?--key needs a sysctl key}]=1; shift 2 ;;
        --key=*) allowed[${1#*=}]=1; shift ;;
        -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) printf 'sysctl-restore.sh: unknown argument %s\n' "$1" >&2; exit 2 ;;
    esac
done
for p in "${profiles[@]}"; do
    [[ -f "$p" ]] || c1m_die "profile $p not found"
    while IFS= read -r key; do allowed[$key]=1; done < <(c1m_profile_keys "$p")
done
if [[ -z "$state" ]]; then
    dir=$(c1m_state_dir) || c1m_die "no private state directory; nothing was restored"
    state="$dir/sysctl.saved"
fi

if [[ ! -e "$state" && ! -L "$state" ]]; then
    c1m_log "no saved sysctl state at $state: nothing to restore"
    exit 0
fi
if ! c1m_check_state_file "$state"; then
    c1m_warn "nothing was restored and $state was left as it is. If you trust its lines, restore"
    c1m_warn "them by hand (sysctl -w KEY=VALUE for each) and then delete it"
    exit 1
fi

keys=()
refused=()
declare -A saved=()
while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" == \#* || -z "$line" ]] && continue
    key=${line%%=*}
    value=${line#*=}
    if [[ "$line" != *=* ]] || ! c1m_valid_key "$key" || ! c1m_valid_value "$value" ||
        [[ -z "${allowed[$key]+set}" ]]; then
        refused+=("$line")
        continue
    fi
    [[ -n "${saved[$key]+set}" ]] || keys+=("$key")
    saved[$key]=$value
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
((${#keys[@]} == 0)) || c1m_print_diff "$before" "$after" "${keys[@]}"
if ((${#refused[@]} > 0)); then
    c1m_warn "refused ${#refused[@]} line(s) of $state: not a key this kit applies (the profile's"
    c1m_warn "or a --key), or not a plain KEY=VALUE; nothing of them was applied:"
    for line in "${refused[@]}"; do printf '    %s\n' "${line//[^[:print:]]/?}" >&2; done
    c1m_warn "if you set such a key yourself, restore it by hand with sysctl -w KEY=VALUE"
    status=1
fi
if [[ $status -eq 0 ]]; then
    rm -f -- "$state"
else
    c1m_warn "kept $state: fix the keys above and run scripts/sysctl-restore.sh again (or delete it)"
fi
exit $status
