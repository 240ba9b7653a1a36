#!/usr/bin/env bash
# test-hosts.sh: --topology hosts end to end, with three "hosts" that are network
# namespaces of this machine, each running its own sshd.
#
# It builds: namespaces srv, cl1, cl2 (the hosts: 198.18.0.1, .2, .3) and ctl (where
# c1m.sh runs, 198.18.0.254, holding the bridge that joins them), all with random
# suffixes; a private temp dir with a host key, a client key, known_hosts and one sshd
# config per host (root login with that key only); then
#   1. a quick pingpong run over ssh: exit 0, merged shards, topology.json naming the
#      hosts, no remote directory or process left, sysctls as before;
#   2. a quick http run (uring and nginx, c1m-loadgen and wrk) over ssh, where nginx
#      and wrk are here (the "hosts" share this machine's programs);
#   3. a run where cl2's sshd (daemon and sessions) is killed while its loadgen runs:
#      the run fails naming that host, the other hosts are still cleaned up and
#      restored.
# Everything it made is removed at exit.
#
# Quirk: the namespaces share this kernel, so the machine-wide sysctls (fs.*,
# net.ipv4.tcp_mem, netdev_max_backlog, tcp_max_orphans) are saved and applied by all
# three "hosts" in turn; they are restored in the reverse order (client 2, client 1,
# server), which ends with the values from before the run. Real hosts each have their own.
# Needs root and /usr/sbin/sshd (scripts/setup.sh installs openssh-server); skipped
# with a message otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "test-hosts.sh: not root: skipped (it creates network namespaces)"
    exit 0
fi
if [[ ! -x /usr/sbin/sshd ]] || ! command -v ssh >/dev/null; then
    echo "test-hosts.sh: no /usr/sbin/sshd or ssh: skipped (sudo scripts/setup.sh installs them)"
    exit 0
fi

sfx=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
ns_srv=c1m-th-srv-$sfx ns_cl1=c1m-th-cl1-$sfx ns_cl2=c1m-th-cl2-$sfx ns_ctl=c1m-th-ctl-$sfx
tmp=$(mktemp -d)
made_run_sshd=0
cleanup() {
    local ns p
    for ns in "$ns_srv" "$ns_cl1" "$ns_cl2" "$ns_ctl"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    done
    sleep 0.3
    for ns in "$ns_srv" "$ns_cl1" "$ns_cl2" "$ns_ctl"; do ip netns del "$ns" 2>/dev/null || true; done
    ((made_run_sshd)) && rmdir /run/sshd 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

profile_keys() { sed -n 's/^-\{0,1\}\([a-z][a-z0-9_.-]*\) *=.*/\1/p' sysctl/c1m.conf; }
root_sysctls() {
    local k
    for k in $(profile_keys); do printf '%s=%s\n' "$k" "$(tr -s '\t ' ' ' <"/proc/sys/${k//.//}" 2>/dev/null)"; done
}
# Read while no c1m run holds the kit's lock: other runs on this machine tune the same
# keys while they run (and restore them at their end).
quiet_sysctls() {
    if [[ -f /run/c1m/lock && ! -L /run/c1m/lock ]]; then
        local out
        out=$(flock /run/c1m/lock bash -c "$(declare -f profile_keys root_sysctls); root_sysctls")
        printf '%s\n' "$out"
    else
        root_sysctls
    fi
}
fail() { echo "test-hosts.sh: FAIL: $*" >&2; exit 1; }

# --- The network: every namespace with a veth into a bridge in ctl.
ip netns add "$ns_ctl"
ip -n "$ns_ctl" link set lo up
ip -n "$ns_ctl" link add br0 type bridge
ip -n "$ns_ctl" link set br0 up
ip -n "$ns_ctl" addr add 198.18.0.254/24 dev br0
i=1
for ns in "$ns_srv" "$ns_cl1" "$ns_cl2"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "c1mth$i$sfx" type veth peer name "c1mtp$i$sfx"
    ip link set "c1mth$i$sfx" netns "$ns"
    ip link set "c1mtp$i$sfx" netns "$ns_ctl"
    ip -n "$ns" link set "c1mth$i$sfx" name eth0
    ip -n "$ns" addr add "198.18.0.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns_ctl" link set "c1mtp$i$sfx" master br0
    ip -n "$ns_ctl" link set "c1mtp$i$sfx" up
    i=$((i + 1))
done

# --- Keys and one sshd per host.
ssh-keygen -q -t ed25519 -N '' -f "$tmp/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/id"
cp "$tmp/id.pub" "$tmp/authorized_keys"
chmod 600 "$tmp/authorized_keys"
[[ -d /run/sshd ]] || { mkdir -m 755 /run/sshd && made_run_sshd=1; }
i=1
for ns in "$ns_srv" "$ns_cl1" "$ns_cl2"; do
    cat >"$tmp/sshd-$i.conf" <<EOF
ListenAddress 198.18.0.$i
Port 22
HostKey $tmp/hostkey
AuthorizedKeysFile $tmp/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $tmp/sshd-$i.pid
EOF
    ip netns exec "$ns" /usr/sbin/sshd -D -f "$tmp/sshd-$i.conf" -E "$tmp/sshd-$i.log" &
    i=$((i + 1))
done
ssh_opts="-i $tmp/id -o IdentitiesOnly=yes -o UserKnownHostsFile=$tmp/known_hosts -o StrictHostKeyChecking=accept-new"
for i in 1 2 3; do
    for _ in $(seq 50); do
        # shellcheck disable=SC2086
        ip netns exec "$ns_ctl" ssh -o BatchMode=yes $ssh_opts "root@198.18.0.$i" true 2>/dev/null && break
        sleep 0.2
    done
done

client_hosts="root@198.18.0.2,root@198.18.0.3"
hosts_args=(--topology hosts --server-host root@198.18.0.1 --client-hosts "$client_hosts"
    --ssh-option "$ssh_opts" --scenarios pingpong --backends "uring,epoll" --duration 1)
remote_left() {
    local ns p
    for ns in "$ns_srv" "$ns_cl1" "$ns_cl2"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do
            case "$(cat "/proc/$p/comm" 2>/dev/null)" in
                sshd | sshd-session | "") ;;
                *) echo "$ns: $(tr '\0' ' ' <"/proc/$p/cmdline")" ;;
            esac
        done
    done
    ls -d /tmp/c1m-host.* /run/c1m/sysctl-hosts-* 2>/dev/null || true
}

echo "== test-hosts: a quick run over ssh (server 198.18.0.1, clients .2 and .3)"
before=$(quiet_sysctls)
out=$tmp/out1
ip netns exec "$ns_ctl" scripts/c1m.sh --no-build --quick "${hosts_args[@]}" --out "$out" || fail "the hosts run failed"
topo=$(ls "$out"/*-pingpong/topology.json)
for want in '"topology": "hosts"' '"host": "root@198.18.0.1"' '"host": "root@198.18.0.3"' '"sysctls_applied"' '"kernel"'; do
    grep -qF "$want" "$topo" || fail "topology.json lacks $want"
done
for d in "$out"/*-pingpong/*-c*/; do
    [[ -f "$d/summary.json" && -f "$d/latency.hgrm" && -f "$d/server.json" ]] || fail "$d: merged results or server.json missing"
    [[ -f "$d/shard-0/summary.json" && -f "$d/shard-1/summary.json" ]] || fail "$d: shard folders missing"
done
left=$(remote_left)
[[ -z "$left" ]] || fail "left on the hosts: $left"
[[ "$(quiet_sysctls)" == "$before" ]] || { diff <(echo "$before") <(quiet_sysctls) >&2 || true; fail "sysctls differ after the run"; }
echo "test-hosts: run 1 ok: merged shards, topology.json names the hosts, nothing left, sysctls as before"

echo "== test-hosts: the http scenario over ssh (uring and nginx under c1m-loadgen and wrk)"
if [[ -n "$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null)" ]] && command -v wrk >/dev/null; then
    out=$tmp/out-http
    http_args=(--topology hosts --server-host root@198.18.0.1 --client-hosts "$client_hosts"
        --ssh-option "$ssh_opts" --scenarios http --backends uring --duration 1)
    ip netns exec "$ns_ctl" scripts/c1m.sh --no-build --quick "${http_args[@]}" --out "$out" || fail "the http run over hosts failed"
    for server in uring nginx; do
        grep -q "^| c1000 | $server | " "$out"/*-headline.md || fail "http on hosts: no headline row for $server"
    done
    grep -q 'root@198.18.0.2 .*wrk' "$out"/*-http/nginx-wrk-c1000/cmd.txt || fail "http on hosts: wrk did not run on the first client host"
    [[ -f $(echo "$out"/*-http/nginx-loadgen-c1000)/nginx.conf ]] || fail "http on hosts: no nginx.conf in the run folder"
    left=$(remote_left)
    [[ -z "$left" ]] || fail "left on the hosts after the http run: $left"
    [[ "$(quiet_sysctls)" == "$before" ]] || { diff <(echo "$before") <(quiet_sysctls) >&2 || true; fail "sysctls differ after the http run"; }
    echo "test-hosts: http run ok: uring and nginx in the headline, wrk on a client host, nothing left"
else
    echo "test-hosts: no nginx or wrk here: the http run is skipped (sudo scripts/setup.sh installs them)"
fi

echo "== test-hosts: client host 198.18.0.3 loses its sshd mid-run"
out=$tmp/out2
ip netns exec "$ns_ctl" scripts/c1m.sh --no-build --quick "${hosts_args[@]}" --out "$out" >"$tmp/run2.log" 2>&1 &
run=$!
killed=0
runs_in() {
    local p
    for p in $(ip netns pids "$1" 2>/dev/null); do
        [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == "$2" ]] && return 0
    done
    return 1
}
for _ in $(seq 600); do
    if runs_in "$ns_cl2" c1m-loadgen; then
        for p in $(ip netns pids "$ns_cl2"); do
            case "$(cat "/proc/$p/comm" 2>/dev/null)" in sshd | sshd-session) kill -KILL "$p" 2>/dev/null || true ;; esac
        done
        killed=1
        break
    fi
    sleep 0.1
done
rc=0
wait "$run" || rc=$?
grep -E 'error|host root@198.18.0.3|watchdog|restored|removed' "$tmp/run2.log" | tail -n 20 || true
((killed)) || fail "the loadgen never started on 198.18.0.3"
((rc != 0)) || fail "the run with a lost host exited 0"
grep -q 'host root@198.18.0.3.*ssh' "$tmp/run2.log" || fail "no message naming root@198.18.0.3"
sleep 3 # the lost host's own watchdog notices its session ended
left=$(remote_left)
[[ -z "$left" ]] || fail "left on the hosts after the failed run: $left"
[[ "$(quiet_sysctls)" == "$before" ]] || { diff <(echo "$before") <(quiet_sysctls) >&2 || true; fail "sysctls differ after the failed run"; }
echo "test-hosts: run 3 ok: failed (exit $rc) naming root@198.18.0.3; the other hosts cleaned and restored, sysctls as before"
