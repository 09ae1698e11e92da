#!/usr/bin/env bash
# The main job: build the multi-stage Go example with lighter, run it, and show where the bytes went
# (single-stage vs multi-stage sizes). Installs what it needs (Debian packages via apt-get), makes the
# local base images once (no registry is reachable), and keeps lighter's store in $LIGHTER_ROOT
# (default: a demo store under /var/tmp that is reused between runs, so the base images stay cached).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-peers.sh
CACHE=$(bash scripts/make-bases.sh)
export LIGHTER_ROOT=${LIGHTER_ROOT:-/var/tmp/lighter-demo}

cargo build --release --quiet -p lighter
L="$PWD/target/release/lighter"

# Base images, made locally: debian:bookworm from debootstrap, golang:1.19 built by lighter itself.
"$L" inspect debian:bookworm >/dev/null 2>&1 || "$L" import "$CACHE/bookworm.tar" debian:bookworm
"$L" inspect golang:1.19 >/dev/null 2>&1 || "$L" build -t golang:1.19 -f examples/bases/golang.Dockerfile examples/bases

echo "== multi-stage build (examples/go/Dockerfile)"
"$L" build -t hello-go:multi examples/go
echo "== single-stage build (examples/go/Dockerfile.bloat)"
"$L" build -t hello-go:bloat -f examples/go/Dockerfile.bloat examples/go

echo "== run it"
"$L" run --rm hello-go:multi -selftest

echo "== sizes"
"$L" images hello-go
"$L" diff hello-go:bloat hello-go:multi --top 5
