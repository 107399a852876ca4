#!/usr/bin/env bash
# Release-history replay (tests/integration/replay.rs, test
# `replay::replay_from_env`): applies the DocType folders of consecutive
# releases of an app, oldest first, to one database, filling every new
# table with rows after each release; checks that no row is lost and that
# each release re-applied is a no-op; then rolls every batch back, newest
# first, requiring the exact state (schema, values, storage classes) from
# before each batch.
#
#   scripts/replay.sh ../shared/corpus/frappe-apps/lms-v1.0.0 \
#                     ../shared/corpus/frappe-apps/lms-v2.20.0
#   DM_REPLAY_KEEP=1 scripts/replay.sh DIR...   # keep the database afterwards
set -euo pipefail
if [ "$#" -eq 0 ]; then
    echo "usage: scripts/replay.sh DIR [DIR...]   (DocType folders, oldest release first)" >&2
    exit 2
fi
dirs=()
for d in "$@"; do
    if [ ! -d "$d" ]; then
        echo "replay: $d is not a directory" >&2
        exit 2
    fi
    abs="$(cd "$d" && pwd)"
    case "$abs" in
        *:*) echo "replay: $abs contains ':', which separates folders in DM_REPLAY_DIRS" >&2; exit 2 ;;
    esac
    dirs+=("$abs")
done
# The test runs with the crate root as working directory.
cd "$(dirname "$0")/.."
echo "replay: ${#dirs[@]} release(s): ${dirs[*]}"
DM_REPLAY_DIRS="$(IFS=:; echo "${dirs[*]}")" \
    cargo test --release --test integration -- --exact replay::replay_from_env --nocapture </dev/null
