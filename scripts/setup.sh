#!/usr/bin/env bash
# setup.sh: installs the distribution packages the kit needs and the machine lacks.
#
#   sudo scripts/setup.sh
#
# Debian/Ubuntu (apt-get), as root. Idempotent: it checks each program first, installs
# only the packages of the missing ones (and says which), and does nothing when all
# are present. Today:
#   ip       (iproute2)  namespaces, veth and addresses of --topology netns
#   ethtool  (ethtool)   --gro/--tso of --topology netns (`ethtool -K`)
#   tc       (iproute2)  --link of --topology netns (netem on each client's veth)
#   go       (golang-go) builds references/go-net (the opt-in `go` backend); the
#                        distribution's Go (1.19 on Debian 12) is enough: stdlib only
#   ssh      (openssh-client)  --topology hosts (the orchestrator reaches every host)
#   sshd     (openssh-server)  scripts/test-hosts.sh (sshd inside test namespaces)
#   taskset  (util-linux)      pins nginx and wrk to the server and client CPUs (http)
#   nginx    (nginx)     the outside reference server of the http scenario; the kit
#                        writes its own nginx.conf into a private folder per run, so
#                        the packaged service is kept from starting (policy-rc.d
#                        during the install) and disabled where systemd runs: no
#                        nginx is left listening on port 80
#   wrk      (wrk)       the outside reference client of the http scenario
#   perf     (linux-perf; Ubuntu: linux-tools-$(uname -r))  --perf: a CPU profile of
#                        the server per case
# Rust is not installed here: install it as yourself with rustup (see README.md).
set -euo pipefail

# Debian packages perf as linux-perf; Ubuntu per kernel, as linux-tools-<release>.
perf_pkg=linux-perf
if grep -qs '^ID=ubuntu' /etc/os-release; then
    perf_pkg=linux-tools-$(uname -r)
fi

# program:package, one per line.
NEEDED=(
    ip:iproute2
    tc:iproute2
    ethtool:ethtool
    go:golang-go
    ssh:openssh-client
    sshd:openssh-server
    taskset:util-linux
    nginx:nginx
    wrk:wrk
    "perf:$perf_pkg"
)

have() {
    command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" ]]
}

missing=()
for pair in "${NEEDED[@]}"; do
    prog=${pair%%:*}
    pkg=${pair#*:}
    have "$prog" || [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
    echo "setup.sh: nothing to install (present: ${NEEDED[*]%%:*})"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: missing packages ${missing[*]}: run as root (sudo scripts/setup.sh)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup.sh: no apt-get here: install ${missing[*]} with this distribution's package manager" >&2
    exit 1
fi
echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Debian starts a packaged service on install unless /usr/sbin/policy-rc.d says no
# (exit 101); the kit runs nginx itself, so keep the packaged one from starting. An
# existing policy-rc.d is left as it is; ours is removed on every exit.
policy=/usr/sbin/policy-rc.d
if [[ " ${missing[*]} " == *" nginx "* && ! -e "$policy" && ! -L "$policy" ]]; then
    # noclobber: never write through a file (or link) that appeared meanwhile; only a
    # file made here is removed again.
    if (umask 022 && set -o noclobber && printf '#!/bin/sh\n# setup.sh (c1m): no service starts during this install\nexit 101\n' >"$policy"); then
        trap 'rm -f -- "$policy"' EXIT
        chmod 0755 "$policy"
    fi
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
if [[ " ${missing[*]} " == *" nginx "* && -d /run/systemd/system ]]; then
    # Installed for the benchmark only: not a boot-time web server.
    systemctl disable --now nginx >/dev/null 2>&1 || true
fi
for pair in "${NEEDED[@]}"; do
    have "${pair%%:*}" || { echo "setup.sh: ${pair%%:*} still missing after installing ${pair#*:}" >&2; exit 1; }
done
echo "setup.sh: installed ${missing[*]}"
