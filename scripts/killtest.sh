#!/usr/bin/env bash
# The kill harness for long runs: commands (build, load, import, save, tag, rmi, prune) killed with
# SIGKILL at random points, each followed by `system check`, a look for left mounts, sessions and
# processes, and the same command again (crates/lighter/tests/store_safety.rs). CI runs 20.
#   bash scripts/killtest.sh [RUNS] [SEED]     (as root; default 100 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
export LIGHTER_KILL_RUNS="${1:-100}"
[ -n "${2:-}" ] && export LIGHTER_KILL_SEED="$2"
export LIGHTER_TEST_CACHE="${LIGHTER_TEST_CACHE:-/var/cache/lighter-test}" LIGHTER_TEST_STRICT=1
exec timeout 3600 cargo test -p lighter --test store_safety -- --nocapture killed_commands
