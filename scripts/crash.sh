#!/usr/bin/env bash
# Long run of the crash harness (tests/integration/crash.rs): SIGKILLs at
# random instants of `doctype-migrate apply` (a 200,000-row table rebuild
# with its backup), `apply` and `rollback` of a fast-path migration (no row
# copied: a schema-text edit and native NOT NULL changes with a NULL fill),
# `rollback` of a lossy migration (data restored from the backup) and
# `backup restore` (into the original table and into a new one), with
# every invariant checked after each kill.
#
#   scripts/crash.sh                # 500 apply, 500 fast-path apply, 200 rollback,
#                                   # 200 restore kills
#   scripts/crash.sh 100            # 100 kills of each kind, random seed (printed)
#   scripts/crash.sh 100 0x1234     # replay a seed
#   scripts/crash.sh - 0x1234       # the default counts, with a seed
#
# DM_CRASH_FASTPATH_KILLS, DM_CRASH_ROLLBACK_KILLS and DM_CRASH_RESTORE_KILLS,
# when set, override the fast-path apply, rollback (both rollback loops) and
# restore counts (restore kills are split between the two targets).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:--}"
if [ "$n" = "-" ]; then
    apply=500
    fastpath="${DM_CRASH_FASTPATH_KILLS:-500}"
    rollback="${DM_CRASH_ROLLBACK_KILLS:-200}"
    restore="${DM_CRASH_RESTORE_KILLS:-200}"
else
    case "$n" in
        '' | *[!0-9]*) echo "usage: scripts/crash.sh [N|-] [SEED]" >&2; exit 2 ;;
    esac
    apply="$n"
    fastpath="${DM_CRASH_FASTPATH_KILLS:-$n}"
    rollback="${DM_CRASH_ROLLBACK_KILLS:-$n}"
    restore="${DM_CRASH_RESTORE_KILLS:-$n}"
fi
seed="${2:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}"
echo "crash: $apply apply, $fastpath fast-path apply, $rollback rollback, $restore restore kills, seed $seed"
cargo build --quiet --bin doctype-migrate --tests
DM_CRASH_KILLS="$apply" DM_CRASH_FASTPATH_KILLS="$fastpath" DM_CRASH_ROLLBACK_KILLS="$rollback" DM_CRASH_RESTORE_KILLS="$restore" \
    DM_CRASH_SEED="$seed" \
    cargo test --quiet --test integration crash:: -- --nocapture --test-threads=1 </dev/null
echo "crash: $apply apply, $fastpath fast-path apply, $rollback rollback, $restore restore kills passed (seed $seed)"
