#!/usr/bin/env bash
# Applies a sysctl profile, first saving the current value of every key it touches to a
# state file, so that scripts/sysctl-restore.sh can put the machine back exactly.
#
#   scripts/sysctl-apply.sh [--state FILE] [--more] [--set KEY=VALUE]... [PROFILE]
#
# PROFILE is a sysctl.conf-style file (default: sysctl/c1m.conf); --set adds or
# overrides one key (repeatable; applied after the profile). The state file defaults to
# sysctl.saved in the kit's private state directory (/run/c1m for root); a state file or
# directory that another user could have written is refused and nothing is changed. If
# the state file already exists (an earlier apply that was never restored), the values
# saved in it are kept: they are the machine's real originals, the current values are ours.
# --more says that is expected (a later apply of the same run, e.g. a variant's sysctls
# for one case), so it does not warn about it.
# A --set KEY this kernel does not have is refused (a leading "-", -KEY=VALUE, makes
# it optional: skipped quietly). Prints a before/after table. Exit status: 0 all
# applied, 1 some key could not be set (the others were), 2 usage, 3 refused: nothing
# was changed (bad key or value, unknown --set key, not root, unsafe state file).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"

usage() {
    sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}
# Refused before any change: its own status, so a caller can stop on it.
refuse() {
    printf 'c1m: error: %s\n' "$*" >&2
    exit 3
}

state="${C1M_STATE_FILE:-}"
more=0
profile=""
sets=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --state) state=${2:?--state needs a file}; shift 2 ;;
        --state=*) state=${1#*=}; shift ;;
        --more) more=1; shift ;;
        --set) sets+=("${2:?--set needs KEY=VALUE}"); shift 2 ;;
        --set=*) sets+=("${1#*=}"); shift ;;
        -h | --help) usage; exit 0 ;;
        -*) printf 'sysctl-apply.sh: unknown option %s\n' "$1" >&2; usage >&2; exit 2 ;;
        *)
            [[ -z "$profile" ]] || { printf 'sysctl-apply.sh: one PROFILE only\n' >&2; exit 2; }
            profile=$1
            shift
            ;;
    esac
done
if [[ -z "$profile" && ${#sets[@]} -eq 0 ]]; then
    profile="$here/../sysctl/c1m.conf"
fi
[[ -z "$profile" || -f "$profile" ]] || refuse "profile $profile not found"
if [[ -z "$state" ]]; then
    dir=$(c1m_state_dir) || refuse "no private place for the sysctl state; nothing was changed"
    state="$dir/sysctl.saved"
fi

# Wanted settings, in order; a later entry for the same key wins. --set keys must exist.
declare -A want=() optional=() from_set=()
keys=()
add_entry() {
    local entry=$1 key value
    [[ "$entry" == *=* ]] || refuse "not KEY=VALUE: $entry"
    key=$(c1m_normalize "${entry%%=*}")
    value=$(c1m_normalize "${entry#*=}")
    if [[ "$key" == -* ]]; then
        key=${key#-}
        optional[$key]=1
    fi
    c1m_valid_key "$key" || refuse "'$key' is not a sysctl key (dotted lowercase words, like net.core.somaxconn)"
    c1m_valid_value "$value" || refuse "$key: value '$value' has characters the kit does not write (only letters, digits, space , : . _ -)"
    [[ -n "${want[$key]+set}" ]] || keys+=("$key")
    want[$key]=$value
}
if [[ -n "$profile" ]]; then
    while IFS= read -r entry; do add_entry "$entry"; done < <(c1m_profile_entries "$profile")
fi
for entry in "${sets[@]}"; do
    add_entry "$entry"
    key=$(c1m_normalize "${entry%%=*}")
    [[ "$key" == -* ]] || from_set[$key]=1
done
for key in "${!from_set[@]}"; do
    c1m_sysctl_exists "$key" || refuse "--set $key: this kernel has no such sysctl (no /proc/sys/${key//.//}); check the name; nothing was changed"
done

if [[ ! -w /proc/sys/net/core/somaxconn ]] && ! c1m_is_root; then
    refuse "sysctl writes need root (uid $(id -u)); nothing was changed"
fi

present=()
for key in "${keys[@]}"; do
    if c1m_sysctl_exists "$key"; then
        present+=("$key")
    elif [[ -n "${optional[$key]+set}" ]]; then
        :
    else
        c1m_warn "sysctl $key does not exist on this kernel; skipped"
    fi
done
[[ ${#present[@]} -gt 0 ]] || { c1m_log "nothing to apply"; exit 0; }

# Save the originals before changing anything. The file is created with mode 600 in a
# directory only we can write, and written in full before the first write to /proc/sys.
umask 077
c1m_check_state_file "$state" || refuse "nothing was changed"
if [[ -f "$state" ]]; then
    [[ $more == 1 ]] ||
    c1m_warn "$state exists: a previous apply was not restored; keeping the values saved there as the originals"
else
    (
        set -o noclobber # never through a file or link that appeared meanwhile
        printf '# c1m sysctl state: values before %s applied %s (pid %s, %s)\n' \
            "${profile:-overrides}" "$(date -u +%FT%TZ)" "$$" "$(id -un)" >"$state"
    ) || refuse "cannot create $state; nothing was changed"
fi
before=$(mktemp)
after=$(mktemp)
trap 'rm -f "$before" "$after"' EXIT
for key in "${present[@]}"; do
    value=$(c1m_sysctl_get "$key")
    printf '%s=%s\n' "$key" "$value" >>"$before"
    if ! c1m_state_get "$state" "$key" >/dev/null; then
        printf '%s=%s\n' "$key" "$value" >>"$state"
    fi
done
sync "$state" 2>/dev/null || true

status=0
for key in "${present[@]}"; do
    value=${want[$key]}
    if ! c1m_sysctl_set "$key" "$value"; then
        c1m_warn "could not set $key = '$value' (kernel refused it)"
        status=1
    fi
    now=$(c1m_sysctl_get "$key" || true)
    if [[ "$now" != "$value" ]]; then
        c1m_warn "$key reads back as '$now' after writing '$value'"
        status=1
    fi
    printf '%s=%s\n' "$key" "$now" >>"$after"
done

c1m_log "applied ${profile:-no profile}${sets[*]:+ with ${sets[*]}}; originals saved in $state"
c1m_print_diff "$before" "$after" "${present[@]}"
exit $status
