#!/usr/bin/env bash
# c1m.sh: one command from kernel tuning to a comparison.
#
# Builds the release binaries, checks the machine (preflight), saves and applies the
# sysctl profile (sysctl/c1m.conf), raises ulimits where it may, runs every server
# backend through every scenario, writes results/<date>-<host>-<scenario>/ with
# compare.md and SVG plots, prints the headline table, and on every exit (success,
# failure, Ctrl-C, kill) stops every process it started and restores every sysctl.
#
# Usage: scripts/c1m.sh [options]
#   --quick               small and fast (under 2 minutes): 2 s runs, 100/1000 conns,
#                         hold at 5000 connections
#   --scenarios LIST      comma list of pingpong,latency,hold,churn,http (default: all
#                         but http; http needs nginx and wrk: sudo scripts/setup.sh)
#   --backends LIST       comma list of uring,epoll,tokio-uring,tokio,go (default: all
#                         but go; go is the Go reference server, references/go-net,
#                         built with `go build` when named; sudo scripts/setup.sh
#                         installs Go); nginx may be named too: http always runs it,
#                         and `--backends nginx --scenarios http` runs it alone
#                         uring-coalesce10, uring-coalesce25, uring-coalesce50: uring
#                         with --coalesce-us 10/25/50, uring-plain-sends: uring with
#                         --plain-sends; each compared as a backend
#   --protocol P          what pingpong, latency, hold and churn speak: echo (default),
#                         frame (length-prefixed) or http; their folders are named
#                         <scenario>-frame / -http. The http scenario always speaks http
#   --body-size N         http: response body bytes of every server (default 64)
#   --conns N             connections for the hold scenario (default: as many as fit in
#                         memory, at most 1,000,000; --quick: 5000)
#   --duration S          measured seconds per run (default 5; --quick 2; hold: at least
#                         one heartbeat interval)
#   --rate MSGS/S         open-loop rate of every latency point (default: 25% and 50% of
#                         the slowest backend's median closed-loop msgs/s at the point's
#                         connection count, from this run's pingpong)
#   --rounds N            interleaved rounds (default 3 for pingpong and latency, 1 for
#                         hold and churn; --quick 1): every round runs every backend at
#                         every point in a fresh shuffled order, into round-N/ folders
#   --seed N              seed of those orders (default: the clock; run.md records it)
#   --batch-waits off|auto  pingpong: the loadgen wakes per echo (off) or per batch
#   --arrivals poisson|uniform  latency: Poisson sends (default; seeded) or evenly
#                         spaced ones
#   --out DIR             parent folder of the scenario folders (default: results/)
#   --no-tune             leave sysctls alone (also the case when not root)
#   --profile FILE        sysctl profile to apply (default: sysctl/c1m.conf)
#   --set KEY=VALUE       one more sysctl to apply after the profile (repeatable)
#   --tag NAME            appended to every run label
#   --sweep 'KEY=V1|V2'   one variant per backend and value of a sysctl (or link=, netns)
#   --ablate [PROFILE]    the profile, each key put back, the untuned machine (variants)
#   --profiles A,B        sysctl profiles side by side (variants)
#   --experiment FILE     a committed experiment (experiments/*.toml)
#   --topology T          where server and loadgen run (default loopback):
#                         loopback  both in this namespace, server on 127.0.0.1
#                         netns     (root) the server in a network namespace of its own
#                                   on 198.18.0.1, one loadgen shard per client namespace
#                                   with sources 198.18.N.x, joined by veth (through a
#                                   bridge namespace when K > 1); shards are merged; the
#                                   namespaces are deleted on every exit path
#                         hosts     the server on --server-host, one loadgen shard per
#                                   --client-hosts host, over ssh (see README Topologies)
#   --server-host H       hosts: [user@]host of the server (ssh key access, root or sudo)
#   --client-hosts H1,H2  hosts: one loadgen shard per host
#   --client-sources R    hosts: source addresses of one client host (repeat per host)
#   --ssh-option "OPTS"   hosts: extra ssh options (also $C1M_SSH_OPTIONS)
#   --clients K           netns: client namespaces, one loadgen shard each (default 1)
#   --mtu N               netns: MTU of every veth (default: the kernel's, 1500)
#   --gro on|off          netns: generic receive offload on every veth (needs ethtool:
#   --tso on|off          netns: TCP segmentation offload      scripts/setup.sh installs it)
#   --threshold EXPR      after the run, a pass/fail check on the medians over rounds
#                         (repeatable), e.g. 'p99_us < 2000', 'all: errors == 0',
#                         'uring/epoll cpu_us_per_msg <= 0.95 @latency-c1000-r50'; the
#                         lines go to stderr and run.md (README "Using the kit in CI")
#   --export FORMAT FILE  after the run, every case's medians for a tracker: bencher,
#                         github-benchmark or github-benchmark-bigger (repeatable)
#   --metrics             every c1m-server process and loadgen shard serves Prometheus
#                         text at a free port of its site's address; the scrape addresses
#                         are logged and kept in each case's metrics.txt and in run.md
#   --perf                a CPU profile of this machine's server process(es) per case
#                         over the measured window (needs perf): perf.folded,
#                         flamegraph.svg, profile.json in the case folder, the breakdown
#                         table in compare.md (not --profile: that is the sysctl profile)
#   --no-build            use the binaries in target/release as they are
#   --cargo PATH          the cargo to build with (default: the invoking user's, see below)
#   --dry-run             print the preflight and the plan, run nothing: no root, no
#                         tuning (the plan uses the port range tuning would set); it uses
#                         target/release as it is, building only when nothing is built yet
#   -h, --help            this text
#
# Scenarios (64-byte messages; server pinned to the first half of the CPUs, loadgen to
# the second half; on 2 CPUs: server CPU 0, loadgen CPU 1):
#   pingpong  closed loop, one message in flight per connection, at 100, 1000 and 10000
#             connections (maximum throughput); one run folder per backend and count
#             (<backend>-c<N>)
#   latency   equal load: open loop at 25% and 50% of the slowest backend's closed-loop
#             maximum, at 1000 and 10000 connections (--quick: 1000), the same rates for
#             every backend (coordinated omission corrected): server CPU per message at
#             the same load, p50/p99/p99.9/max; folders <backend>-c<N>-r<percent>
#   hold      as many connections as fit, up to 1M, each sending a heartbeat: ramp time,
#             failed connects, heartbeat latency, server RSS, kernel slab per connection
#   churn     connect, one exchange, close, again: connections per second, connect latency
#   http      (opt-in, loopback only) HTTP/1.1 keep-alive: every backend
#             (--protocol http) and nginx, each under c1m-loadgen and wrk, 1000
#             connections closed loop, then one open-loop rate (c1m-loadgen only: wrk
#             cannot hold a rate); server CPU per request from /proc over the measured
#             window for every server alike; folders <server>-<loadgen|wrk>-c1000[-r50]
# Backends that need one fd per connection (epoll, tokio, tokio-uring, go) run as several
# server processes (one port each) when one process's RLIMIT_NOFILE cannot hold them.
#
# Under sudo, the build runs as the invoking user (SUDO_USER) with that user's own
# toolchain (~/.cargo/bin/cargo as rustup installs it, or cargo on the secure PATH), so
# target/ stays theirs; only the runs need root, and the result folders are handed to
# that user at exit.
#
# Exit status: 0 all ran; 1 a run failed or the cleanup was not clean; 2 usage;
# 4 every run went through but a --threshold failed; 130/143/129 interrupted.
#
# This script only builds; the work is done by target/release/c1m-bench (bench/).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

build=1
dry_run=0
cargo=""
pass=() # everything but --cargo goes to c1m-bench
while [[ $# -gt 0 ]]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --no-build) build=0 ;;
        --dry-run) dry_run=1 ;;
        --cargo)
            [[ $# -ge 2 ]] || { printf 'c1m.sh: --cargo needs a path\n' >&2; exit 2; }
            cargo=$2
            shift 2
            continue
            ;;
        --cargo=*) cargo=${1#*=}; shift; continue ;;
    esac
    pass+=("$1")
    shift
done
set -- "${pass[@]}"

# The command as typed, for every run.md.
C1M_INVOCATION=$(printf '%q ' "$0" "$@")
export C1M_INVOCATION

cd "$ROOT"
BENCH="$ROOT/target/release/c1m-bench"
# A dry run looks at the plan with what is built; it builds only when nothing is.
if ((dry_run)) && [[ -x "$BENCH" ]]; then build=0; fi
if ((build)); then
    c1m_build "$cargo" || exit 1
    # The Go reference server only when a run asks for it (--backends ...,go).
    if c1m_wants_go "$@"; then c1m_build_go || exit 1; fi
fi
[[ -x "$BENCH" ]] || { printf 'c1m: error: missing %s (run without --no-build)\n' "$BENCH" >&2; exit 1; }
exec "$BENCH" run "$@"
