#!/usr/bin/env bash
# Long run of the crash harness (tests/integration/crash.rs): N SIGKILLs at
# random instants of `doctype-migrate apply` rebuilding a 200,000-row table,
# with every invariant checked after each kill.
#
#   scripts/crash.sh 500            # 500 kills, random seed (printed)
#   scripts/crash.sh 500 0x1234     # replay a seed
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:?usage: scripts/crash.sh N [SEED]}"
seed="${2:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}"
echo "crash: $n kills, seed $seed"
cargo build --quiet --bin doctype-migrate --tests
DM_CRASH_KILLS="$n" DM_CRASH_SEED="$seed" \
    cargo test --quiet --test integration crash:: -- --nocapture --test-threads=1 </dev/null
echo "crash: $n kills passed (seed $seed)"
