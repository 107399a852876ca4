#!/usr/bin/env bash
# Long run of the concurrent-start tests (tests/integration/concurrency.rs)
# with N processes instead of 32, repeated R times (default 1).
#
#   scripts/concurrency.sh 100        # 100 processes at once, fresh DB and v1 -> v2
#   scripts/concurrency.sh 100 10     # the same, ten times
#
# Each round: N `doctype-migrate apply` processes started at once on a fresh
# database (v1), then N on v1 with data (v2); all must exit 0, each change
# must be applied and recorded exactly once, the schema must end at the
# target, and nobody may print "database is locked".
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:?usage: scripts/concurrency.sh N [ROUNDS]}"
rounds="${2:-1}"
cargo build --quiet --bin doctype-migrate --tests
for ((r = 1; r <= rounds; r++)); do
    echo "==> round $r/$rounds: $n processes"
    DM_CONCURRENCY="$n" cargo test --quiet --test integration concurrency::concurrent_starts -- --nocapture --test-threads=1 </dev/null
done
echo "concurrency: $rounds round(s) of $n processes passed"
