#!/usr/bin/env bash
# The project's whole test suite: formatting, lints, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== scripts/setup.sh (distribution packages the kit needs)"
if [[ $(id -u) -eq 0 ]]; then
    scripts/setup.sh
else
    echo "not root: skipping scripts/setup.sh (run it as root to install what is missing)"
fi
echo "== references/go-net (the Go reference server): gofmt, go vet, go test, build"
# Built before cargo test, so the server behaviour tests run against it too (they skip
# it, saying why, when Go is missing: sudo scripts/setup.sh installs it).
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
if go=$(c1m_find_go "${HOME:-}"); then
    unformatted=$(cd references/go-net && "$(dirname "$(readlink -f "$go")")/gofmt" -l .)
    [[ -z "$unformatted" ]] || { echo "gofmt -l lists: $unformatted" >&2; exit 1; }
    (cd references/go-net && GOPROXY=off "$go" vet ./... && GOPROXY=off "$go" test ./...)
    c1m_build_go
else
    echo "Go is not installed: skipping references/go-net (sudo scripts/setup.sh installs golang-go)"
fi
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
# setup.sh installed wrk as root: then the wrk integration tests must run, not skip.
if [[ $(id -u) -eq 0 ]]; then
    export C1M_REQUIRE_WRK=1
fi
cargo test --workspace --release 2>&1
echo "== scripts/c1m.sh --dry-run with a subset of scenarios and backends"
scripts/c1m.sh --dry-run --scenarios hold --backends uring,epoll >/dev/null
scripts/c1m.sh --dry-run --scenarios pingpong,latency --backends tokio >/dev/null
scripts/c1m.sh --dry-run --scenarios hold --backends go,uring >/dev/null
# A reader that went away (`| head`) closes the pipe: the orchestrator ignores the
# closed output and exits 0 (the reader here is gone before the first line is written).
closed_rc=0
(sleep 1; exec scripts/c1m.sh --dry-run --scenarios hold --backends uring 2>&1) | true || closed_rc=$?
[[ $closed_rc -eq 0 ]] || { echo "c1m.sh --dry-run into a closed pipe: exit status $closed_rc (want 0)" >&2; exit 1; }
# Captured first: grep -q in a pipe would close it early and fail the writer with EPIPE.
http_plan=$(scripts/c1m.sh --dry-run --scenarios http --backends uring 2>&1)
grep -q "^  http  .*servers uring nginx" <<<"$http_plan" || { echo "the http dry run plans no uring and nginx servers" >&2; exit 1; }
if scripts/c1m.sh --dry-run --scenarios nonsense >/dev/null 2>&1; then
    echo "c1m.sh accepted an unknown scenario" >&2
    exit 1
fi
echo "== scripts/c1m.sh --dry-run --topology netns --clients 2: the per-namespace plan, nothing created"
ns_before=$(ip netns list 2>/dev/null || true)
plan=$(scripts/c1m.sh --dry-run --topology netns --clients 2 --scenarios pingpong,hold 2>&1)
for want in "topology (netns)" "loadgen shard 1: namespace c1m-cli1-" "listening on 198.18.0.1" "ip netns add c1m-srv-"; do
    grep -qF "$want" <<<"$plan" || { echo "netns dry run: '$want' missing" >&2; exit 1; }
done
[[ "$(ip netns list 2>/dev/null || true)" == "$ns_before" ]] || { echo "the netns dry run created a namespace" >&2; exit 1; }
if scripts/c1m.sh --dry-run --clients 2 >/dev/null 2>&1; then
    echo "c1m.sh accepted --clients without --topology netns" >&2
    exit 1
fi
echo "== --sweep: an unknown key is a usage error naming it; a three-number key wants three numbers"
sweep_rc=0
out=$(scripts/c1m.sh --dry-run --sweep 'net.ipv4.tcp_no_delay=0|1' 2>&1) || sweep_rc=$?
[[ $sweep_rc == 2 ]] && grep -q "net.ipv4.tcp_no_delay" <<<"$out" || { echo "--sweep of an unknown key: rc $sweep_rc: $out" >&2; exit 1; }
sweep_rc=0
out=$(scripts/c1m.sh --dry-run --sweep 'net.ipv4.tcp_rmem=4096|16384' 2>&1) || sweep_rc=$?
[[ $sweep_rc == 2 ]] && grep -q "takes 3 numbers" <<<"$out" || { echo "--sweep tcp_rmem=4096|16384: rc $sweep_rc: $out" >&2; exit 1; }
cargo build --release --bins
echo "== root safety: planted state files, symlinks, Ctrl-C and SIGKILL restore"
scripts/test-root-safety.sh
echo "== the README's first command as sudo runs it: build as the user, files owned by the user"
scripts/test-sudo-entry.sh
echo "== scripts/c1m.sh --quick (end to end: tune, every backend and scenario, compare, restore)"
# Into a temporary folder, so CI never writes into results/; kept if the run fails.
c1m_out=$(mktemp -d)
scripts/c1m.sh --quick --out "$c1m_out"
rm -rf "$c1m_out"
echo "== scripts/c1m.sh --quick --protocol frame, and the http scenario (c1m backends, go and nginx under c1m-loadgen and wrk)"
c1m_out=$(mktemp -d)
scripts/c1m.sh --quick --protocol frame --scenarios pingpong,hold --backends uring,epoll --out "$c1m_out"
grep -q '^### pingpong, frame protocol' "$c1m_out"/*-headline.md || { echo "no frame pingpong in the headline" >&2; exit 1; }
if command -v wrk >/dev/null && command -v nginx >/dev/null; then
    http_backends=uring,epoll,tokio-uring,tokio
    [[ -x references/go-net/bin/c1m-go-net ]] && http_backends+=,go
    scripts/c1m.sh --quick --scenarios http --backends "$http_backends" --out "$c1m_out"
    for server in ${http_backends//,/ } nginx; do
        grep -q "^| c1000 | $server | " "$c1m_out"/*-headline.md \
            || { echo "the http scenario's headline has no row for $server" >&2; exit 1; }
    done
elif [[ $(id -u) -eq 0 ]]; then
    echo "wrk or nginx missing after scripts/setup.sh" >&2
    exit 1
else
    echo "not root and no wrk/nginx: skipping the http scenario (sudo scripts/setup.sh installs them)"
fi
rm -rf "$c1m_out"
echo "== thresholds and exports: a failing threshold gives exit status 4; compare checks the same folders"
c1m_out=$(mktemp -d)
rc=0
scripts/c1m.sh --quick --scenarios pingpong --backends uring,epoll --duration 1 --out "$c1m_out" \
    --threshold 'errors == 0' --threshold 'p99_us < 0.001' --export bencher "$c1m_out/bmf.json" 2>"$c1m_out/stderr" || rc=$?
[[ $rc -eq 4 ]] || { cat "$c1m_out/stderr" >&2; echo "an impossible threshold gave exit status $rc, not 4" >&2; exit 1; }
grep -q '^✓ errors == 0: all 4 cases pass' "$c1m_out"/*-pingpong/run.md \
    && grep -q '^✗ p99_us < 0.001: 4 of 4 cases fail' "$c1m_out"/*-pingpong/run.md \
    || { echo "run.md lacks the threshold lines" >&2; exit 1; }
grep -q '"pingpong/uring-c100"' "$c1m_out/bmf.json" || { echo "the bencher export has no uring-c100" >&2; exit 1; }
target/release/c1m-loadgen compare "$c1m_out" --threshold 'all: errors == 0' >/dev/null \
    || { echo "c1m-loadgen compare --threshold on the run's folder did not pass" >&2; exit 1; }
rm -rf "$c1m_out"
echo "== --metrics and --perf: scrape addresses in run.md and each case's metrics.txt; per case a flame graph and a breakdown summing to 100%"
c1m_out=$(mktemp -d)
observe=(--metrics)
if command -v perf >/dev/null && perf stat -e cpu-clock -- true >/dev/null 2>&1; then
    observe+=(--perf)
else
    echo "perf missing or it cannot sample here: --perf not checked (sudo scripts/setup.sh installs it)"
fi
scripts/c1m.sh --quick --scenarios pingpong --backends uring,epoll --duration 1 "${observe[@]}" --out "$c1m_out"
run_md=$(cat "$c1m_out"/*-pingpong/run.md)
for b in uring epoll; do
    grep -Eq "^- metrics of $b-c100: server: http://127\.0\.0\.1:[0-9]+/metrics; loadgen: http://127\.0\.0\.[0-9]+:[0-9]+/metrics" <<<"$run_md" \
        || { echo "run.md has no scrape addresses of $b-c100" >&2; exit 1; }
done
for d in "$c1m_out"/*-pingpong/{uring,epoll}-c*; do
    metrics_txt=$(cat "$d/metrics.txt")
    grep -q '^server: http://' <<<"$metrics_txt" && grep -q '^loadgen: http://' <<<"$metrics_txt" \
        || { echo "$d/metrics.txt lacks a scrape address: $metrics_txt" >&2; exit 1; }
    [[ " ${observe[*]} " == *" --perf "* ]] || continue
    [[ -s $d/flamegraph.svg && -s $d/perf.folded && ! -e $d/perf.data ]] \
        || { echo "$d: no flamegraph.svg or perf.folded, or perf.data left behind" >&2; exit 1; }
    # The shares of profile.json (one "name": value line each) sum to 100 up to rounding.
    sum=$(sed -n '/"shares_pct"/,/}/s/^ *"[a-z_]*": \([0-9.]*\),\{0,1\}$/\1/p' "$d/profile.json" | awk '{s += $1} END {printf "%.1f", s}')
    awk -v s="$sum" 'BEGIN {exit !(s >= 99.5 && s <= 100.5)}' \
        || { echo "$d/profile.json: the shares sum to $sum, not 100" >&2; exit 1; }
done
if [[ " ${observe[*]} " == *" --perf "* ]]; then
    compare_md=$(cat "$c1m_out"/*-pingpong/compare.md)
    grep -q '^| case | samples | user | syscall | tcp/ip | io_uring | epoll | sched | softirq | other kernel |' <<<"$compare_md" \
        || { echo "compare.md has no server CPU breakdown table" >&2; exit 1; }
fi
rm -rf "$c1m_out"
if [[ $(id -u) -eq 0 ]]; then
    echo "== scripts/c1m.sh --topology netns --clients 2 (namespaces built, used and deleted; root namespace untouched)"
    # Every key of the profile as the root namespace has it, the per-namespace ones too:
    # those must not change at all, the machine-wide ones must be restored.
    profile_keys() { sed -n 's/^-\{0,1\}\([a-z][a-z0-9_.-]*\) *=.*/\1/p' sysctl/c1m.conf; }
    root_sysctls() {
        local k
        for k in $(profile_keys); do printf '%s=%s\n' "$k" "$(cat "/proc/sys/${k//.//}" 2>/dev/null | tr -s '\t ' ' ')"; done
    }
    before=$(root_sysctls)
    c1m_out=$(mktemp -d)
    scripts/c1m.sh --quick --topology netns --clients 2 --scenarios pingpong,hold --backends uring,epoll \
        --duration 1 --out "$c1m_out"
    for f in "$c1m_out"/*-pingpong/topology.json "$c1m_out"/*-hold/topology.json; do
        grep -q '"topology": "netns"' "$f" || { echo "$f does not say netns" >&2; exit 1; }
    done
    if grep -q '^c1m-' <<<"$(ip netns list)"; then
        echo "c1m namespaces left behind:" >&2
        ip netns list >&2
        exit 1
    fi
    after=$(root_sysctls)
    if [[ "$before" != "$after" ]]; then
        echo "root namespace sysctls changed by the netns run:" >&2
        diff <(echo "$before") <(echo "$after") >&2 || true
        exit 1
    fi
    rm -rf "$c1m_out"
    if command -v wrk >/dev/null && command -v nginx >/dev/null; then
        echo "== scripts/c1m.sh --scenarios http --topology netns (servers, nginx and wrk inside the namespaces)"
        c1m_out=$(mktemp -d)
        scripts/c1m.sh --quick --topology netns --scenarios http --backends uring,epoll --duration 1 --out "$c1m_out"
        for server in uring epoll nginx; do
            grep -q "^| c1000 | $server | " "$c1m_out"/*-headline.md \
                || { echo "http on netns: no headline row for $server" >&2; exit 1; }
        done
        grep -q '^ip netns exec c1m-cli0-[a-z0-9]* .*wrk ' "$c1m_out"/*-http/nginx-wrk-c1000/cmd.txt \
            || { echo "http on netns: wrk did not run in the client namespace" >&2; exit 1; }
        ! grep -q '^c1m-' <<<"$(ip netns list)" || { echo "http on netns left namespaces behind" >&2; exit 1; }
        rm -rf "$c1m_out"
    fi
    echo "== --link on netns: a shaped quick run where the kernel has netem, else a clean refusal"
    c1m_out=$(mktemp -d)
    if link_out=$(scripts/c1m.sh --quick --topology netns --link delay=20ms,loss=0.5% --scenarios pingpong \
        --backends uring --duration 1 --out "$c1m_out" 2>&1); then
        grep -q '"kind": "netem"' "$c1m_out"/*-pingpong/topology.json \
            || { echo "--link: topology.json has no netem read-back" >&2; exit 1; }
    elif grep -q "this kernel has no netem qdisc" <<<"$link_out"; then
        echo "this kernel has no netem (CONFIG_NET_SCH_NETEM): --link was refused cleanly; no shaped run here"
    else
        echo "$link_out" >&2
        exit 1
    fi
    ! grep -q '^c1m-' <<<"$(ip netns list)" || { echo "--link left namespaces behind" >&2; exit 1; }
    rm -rf "$c1m_out"
    echo "== --variants: two variants of uring a server flag and a sysctl apart, each case with its own (loopback, netns)"
    variant_rmem="4096 65536 1048576"
    for topo in loopback netns; do
        before="$(root_sysctls)"
        c1m_out=$(mktemp -d)
        scripts/c1m.sh --quick --topology "$topo" --scenarios pingpong --variants experiments/two-uring.toml \
            --duration 1 --out "$c1m_out"
        for d in "$c1m_out"/*-pingpong/uring-c[0-9]*; do
            grep -q '"sysctls": {}' "$d/case.json" && ! grep -q -- '--coalesce-us' "$d/cmd.txt" &&
                ! grep -q "\"net.ipv4.tcp_rmem\": \"$variant_rmem\"" "$d/summary.json" ||
                { echo "$topo: $d ran with the other variant's flag or sysctl" >&2; exit 1; }
        done
        for d in "$c1m_out"/*-pingpong/uring-coalesce10-small-rmem-c*; do
            grep -q "\"net.ipv4.tcp_rmem\": \"$variant_rmem\"" "$d/case.json" &&
                grep -q -- '--coalesce-us 10' "$d/cmd.txt" &&
                grep -q "\"net.ipv4.tcp_rmem\": \"$variant_rmem\"" "$d/summary.json" ||
                { echo "$topo: $d does not show its variant's flag and sysctl" >&2; exit 1; }
        done
        [[ "$(root_sysctls)" == "$before" ]] || { echo "$topo: root sysctls differ after the variants run" >&2; exit 1; }
        rm -rf "$c1m_out"
    done
    echo "== a variant's link (--sweep link=...): shaped for its own cases, or refused before any case without netem"
    c1m_out=$(mktemp -d)
    if link_out=$(scripts/c1m.sh --quick --topology netns --scenarios pingpong --backends uring \
        --sweep 'link=none|delay=20ms,loss=0.1%' --duration 1 --out "$c1m_out" 2>&1); then
        for d in "$c1m_out"/*-pingpong/uring-link-delay-20ms-loss-0-1pct-c*; do
            grep -q '"link": "delay=20ms,loss=0.1%"' "$d/case.json" || { echo "$d: case.json has no link" >&2; exit 1; }
        done
        for d in "$c1m_out"/*-pingpong/uring-link-none-c*; do
            ! grep -q '"link"' "$d/case.json" || { echo "$d: a link where none was asked" >&2; exit 1; }
        done
    elif grep -q "this kernel has no netem qdisc" <<<"$link_out"; then
        [[ -z "$(ls -A "$c1m_out")" ]] || { echo "a variant's link without netem: the run started anyway" >&2; exit 1; }
        echo "no netem here: a variant's link was refused before any case"
    else
        echo "$link_out" >&2
        exit 1
    fi
    ! grep -q '^c1m-' <<<"$(ip netns list)" || { echo "a variant's link left namespaces behind" >&2; exit 1; }
    rm -rf "$c1m_out"
    echo "== --sweep: two values of net.core.somaxconn interleaved in rounds, each case records its value, one row per value"
    before="$(root_sysctls)"
    somaxconn_before=$(cat /proc/sys/net/core/somaxconn)
    c1m_out=$(mktemp -d)
    scripts/c1m.sh --quick --scenarios pingpong --backends uring --sweep 'net.core.somaxconn=1024|2048' \
        --rounds 2 --duration 1 --out "$c1m_out"
    for v in 1024 2048; do
        n=0
        for d in "$c1m_out"/*-pingpong/round-*/uring-somaxconn-$v-c*; do
            grep -q "\"net.core.somaxconn\": \"$v\"" "$d/case.json" && [[ -f "$d/kernel.json" ]] ||
                { echo "$d does not record somaxconn $v (case.json) or has no kernel.json" >&2; exit 1; }
            n=$((n + 1))
        done
        [[ $n == 4 ]] || { echo "somaxconn $v: $n run folders, want 2 points x 2 rounds" >&2; exit 1; }
        rows=$(grep -c "^| uring-somaxconn-$v | c100 | 2 |" "$c1m_out"/*-pingpong/compare.md)
        [[ $rows == 1 ]] || { echo "somaxconn $v: $rows rows at c100 in the experiment table, want 1" >&2; exit 1; }
    done
    [[ "$(root_sysctls)" == "$before" && "$(cat /proc/sys/net/core/somaxconn)" == "$somaxconn_before" ]] ||
        { echo "sysctls differ after the sweep" >&2; exit 1; }
    rm -rf "$c1m_out"
else
    echo "not root: skipping the netns end-to-end run (it creates network namespaces)"
fi
echo "== scripts/test-hosts.sh (--topology hosts over ssh into namespaces with their own sshd)"
scripts/test-hosts.sh
