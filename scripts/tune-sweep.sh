#!/usr/bin/env bash
# Runs one scenario once per value of one sysctl key and compares the runs by value.
#
#   scripts/tune-sweep.sh KEY "V1 V2 ..." [SCENARIO] [c1m.sh options...]
#
#   KEY        a sysctl key, e.g. net.core.somaxconn
#   V1 V2 ...  its values, space-separated; a value with spaces in it is written with
#              commas: "1024,65535 32768,60999" for net.ipv4.ip_local_port_range
#   SCENARIO   pingpong (default), latency, hold or churn
#   options    passed to scripts/c1m.sh: --quick, --backends, --conns, --duration,
#              --no-tune (sweep the key on an otherwise untuned kernel), --out DIR
#
# For each value, c1m.sh applies sysctl/c1m.conf (unless --no-tune) and then KEY=value,
# runs the scenario, and restores every sysctl it touched, KEY included. The sweep
# folder <out>/<date>-<host>-sweep-<key>-<scenario>/ holds each value's runs under
# runs/<value>/ and one compare.md with a table (and an SVG plot) per run name,
# labelled by value. Needs root (sysctl writes).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

[[ $# -ge 1 && ( "$1" == -h || "$1" == --help ) ]] && { usage; exit 0; }
[[ $# -ge 2 ]] || { usage >&2; exit 2; }
key=$1
read -r -a values <<<"$2"
shift 2
scenario=pingpong
if [[ $# -gt 0 && "$1" != -* ]]; then
    scenario=$1
    shift
fi
case "$scenario" in
    pingpong | latency | hold | churn) ;;
    *) c1m_die "unknown scenario '$scenario' (pingpong, latency, hold, churn)" ;;
esac
((${#values[@]} > 0)) || c1m_die "no values given"
# The dotted form only: c1m.sh and the restore know keys by it (net/core/somaxconn
# would run every point untuned).
c1m_valid_key "$key" || c1m_die "'$key' is not a sysctl key in dotted form (like net.core.somaxconn)"
c1m_sysctl_exists "$key" || c1m_die "sysctl $key does not exist on this kernel"
c1m_is_root || c1m_die "a sweep writes sysctls: run it as root"

out_parent="$ROOT/results"
pass=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out_parent=${2:?--out needs a folder}; shift 2 ;;
        --out=*) out_parent=${1#*=}; shift ;;
        --scenarios* | --set* | --tag*) c1m_die "$1 is set by tune-sweep.sh itself" ;;
        *) pass+=("$1"); shift ;;
    esac
done

HOST=$(hostname -s 2>/dev/null || hostname)
sweep="$out_parent/$(date +%Y-%m-%d-%H%M)-$HOST-sweep-$key-$scenario"
[[ ! -e "$sweep" && ! -L "$sweep" ]] || sweep="$sweep-$$"
mkdir -p -- "$out_parent"
# A new folder, never an existing one or a link planted at its name.
mkdir -- "$sweep" || c1m_die "cannot create the new folder $sweep"
mkdir -- "$sweep/runs"
# Under sudo the sweep folder belongs to the invoking user, however the sweep ends.
trap 'c1m_give_to_user "$sweep"' EXIT
c1m_log "sweep of $key over ${values[*]} ($scenario) -> $sweep"
original=$(c1m_sysctl_get "$key")

# A value as a folder name and a label: "1024 65535" -> "1024_65535".
slug() { local v=${1//,/_}; v=${v// /_}; printf '%s' "${v//\//_}"; }

build=()
status=0
for v in "${values[@]}"; do
    value=${v//,/ }
    c1m_log "=== $key = $value"
    if ! "$here/c1m.sh" --scenarios "$scenario" --set "$key=$value" --tag "$(slug "$v")" \
        --out "$sweep/runs/$(slug "$v")" "${build[@]}" "${pass[@]}"; then
        c1m_warn "the run with $key = $value failed or had failed runs (see above)"
        status=1
    fi
    build=(--no-build)
    now=$(c1m_sysctl_get "$key")
    [[ "$now" == "$original" ]] || c1m_die "$key is '$now' after the run, was '$original': c1m.sh did not restore it"
done

# Group the run folders by run name (uring-c100, epoll, ...) across values.
md="$sweep/compare.md"
{
    printf '# sweep: %s over %s (%s)\n\n' "$key" "${values[*]}" "$scenario"
    # shellcheck disable=SC2016 # backquotes are markdown
    printf 'Each value ran `scripts/c1m.sh --scenarios %s --set %s=VALUE %s` (runs/VALUE/); %s was %s before and after. Labels end in the value.\n\n' \
        "$scenario" "$key" "${pass[*]}" "$key" "$original"
} >"$md"
mapfile -t names < <(for v in "${values[@]}"; do
    for f in "$sweep/runs/$(slug "$v")"/*-"$scenario"/runs.txt; do [[ -f "$f" ]] && cat "$f"; done
done | awk '!seen[$0]++')
for name in "${names[@]}"; do
    dirs=()
    for v in "${values[@]}"; do
        for d in "$sweep/runs/$(slug "$v")"/*-"$scenario/$name"; do
            [[ -f "$d/summary.json" ]] && dirs+=("$d")
        done
    done
    printf '## %s\n\n' "$name" >>"$md"
    if ((${#dirs[@]} == 0)); then
        printf 'No value produced results.\n\n' >>"$md"
        continue
    fi
    if "$ROOT/target/release/c1m-loadgen" compare "${dirs[@]}" --out "$sweep/.compare.md" \
        --plot "$sweep/plot-$name.svg" >/dev/null; then
        c1m_strip_literal "$sweep/" <"$sweep/.compare.md" >>"$md"
        printf '\n![latency percentiles](plot-%s.svg)\n\n' "$name" >>"$md"
    else
        printf 'c1m-loadgen compare failed.\n\n' >>"$md"
        status=1
    fi
done
rm -f "$sweep/.compare.md"
c1m_log "wrote $md"
exit $status
