#!/usr/bin/env bash
# The test command: installs what the tests need (Rust is on the machine; Debian peers via apt-get),
# prepares the peers and base images, and runs the whole workspace test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-peers.sh
export LIGHTER_TEST_CACHE=$(bash scripts/make-bases.sh busybox)
# The debootstrap base for the examples test (a few minutes, once); without it that test says so and skips.
bash scripts/make-bases.sh bookworm >/dev/null || echo "test: could not make the bookworm base (debootstrap); the examples test will fail" >&2
export LIGHTER_CONFORMANCE=${LIGHTER_CONFORMANCE:-$(cd .. && pwd)/shared/conformance}
[ -d "$LIGHTER_CONFORMANCE" ] || echo "test: conformance data absent at $LIGHTER_CONFORMANCE; those tests will say so and skip" >&2

# Strict mode: a test whose peer (docker, skopeo, docker-registry, a base image, ...) is missing
# fails instead of skipping, since this script installs every peer.
export LIGHTER_TEST_STRICT=1
cargo build --workspace --all-targets --quiet
cargo test --workspace --no-fail-fast 2>&1 | tee /tmp/lighter-test.log
