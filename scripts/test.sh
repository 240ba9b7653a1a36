#!/usr/bin/env bash
# The project's whole test suite: formatting, lints, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace --release 2>&1
echo "== scripts/c1m.sh --dry-run with a subset of scenarios and backends"
scripts/c1m.sh --dry-run --scenarios hold --backends uring,epoll >/dev/null
scripts/c1m.sh --dry-run --scenarios pingpong,latency --backends tokio >/dev/null
if scripts/c1m.sh --dry-run --scenarios nonsense >/dev/null 2>&1; then
    echo "c1m.sh accepted an unknown scenario" >&2
    exit 1
fi
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
