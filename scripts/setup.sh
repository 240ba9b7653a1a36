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
#   go       (golang-go) builds references/go-net (the opt-in `go` backend); the
#                        distribution's Go (1.19 on Debian 12) is enough: stdlib only
#   ssh      (openssh-client)  --topology hosts (the orchestrator reaches every host)
#   sshd     (openssh-server)  scripts/test-hosts.sh (sshd inside test namespaces)
# Rust is not installed here: install it as yourself with rustup (see README.md).
set -euo pipefail

# program:package, one per line.
NEEDED=(
    ip:iproute2
    ethtool:ethtool
    go:golang-go
    ssh:openssh-client
    sshd:openssh-server
)

have() {
    command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" ]]
}

missing=()
for pair in "${NEEDED[@]}"; do
    prog=${pair%%:*}
    pkg=${pair#*:}
    have "$prog" || missing+=("$pkg")
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
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
for pair in "${NEEDED[@]}"; do
    have "${pair%%:*}" || { echo "setup.sh: ${pair%%:*} still missing after installing ${pair#*:}" >&2; exit 1; }
done
echo "setup.sh: installed ${missing[*]}"
