#!/usr/bin/env bash
# A fleet of CI runners sharing one build cache through a registry (issue 15): three runners, each
# with a store of its own and an empty one for every job, and one local docker-registry. The main
# branch of the Go example is built once and its cache exported; then the three runners build three
# branches at the same time (each changes main.go), reading the branch's cache and main's, and
# exporting the branch's; then a second round of jobs (empty stores again) builds the same commits.
# Prints, per job: time, steps and how many hit, and the bytes moved (cache layers and base image
# layers fetched). Usage: bash scripts/fleet.sh (root; uses the release binary).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-peers.sh >/dev/null
cargo build --release --quiet -p lighter
L="$PWD/target/release/lighter"
W=${FLEET_DIR:-/var/tmp/lighter-fleet}
demo=/var/tmp/lighter-demo
LIGHTER_ROOT=$demo "$L" inspect golang:1.19 >/dev/null 2>&1 || LIGHTER_ROOT=$demo bash scripts/demo.sh >/dev/null
rm -rf "$W"; mkdir -p "$W"
source scripts/lib/registry.sh
trap 'stop_registries "$W"' EXIT
p=$(start_registry "$W" 5400)
reg=127.0.0.1:$p
LIGHTER_ROOT=$demo "$L" tag golang:1.19 "$reg/library/golang:1.19"
LIGHTER_ROOT=$demo "$L" push -q "$reg/library/golang:1.19" >/dev/null

branch() { # NAME: a checkout of the example with its own change
  local d="$W/src-$1"
  cp -r examples/go "$d"
  sed -i -e "s|^FROM golang:1.19|FROM $reg/library/golang:1.19|" -e '/^# syntax=/d' "$d/Dockerfile"
  [ "$1" = main ] || sed -i "s|Service: \"hello-go\"|Service: \"hello-go-$1\"|" "$d/main.go"
}

job() { # RUNNER ROUND BRANCH: one CI job on an empty store; prints its report line
  local runner=$1 round=$2 b=$3 store="$W/store-$1-$2" log="$W/job-$1-$2.log" s e
  rm -rf "$store"
  s=$(date +%s.%N)
  local from=(--cache-from "type=registry,ref=$reg/cache/go:$b")
  [ "$b" = main ] || from+=(--cache-from "type=registry,ref=$reg/cache/go:main")
  LIGHTER_ROOT="$store" "$L" build --progress plain -t "app:$b" "${from[@]}" \
    --cache-to "type=registry,ref=$reg/cache/go:$b,mode=max" "$W/src-$b" >"$log" 2>&1
  e=$(date +%s.%N)
  local steps cache base
  steps=$(grep -o '([0-9]* steps, [0-9]* cached)' "$log" | tr -d '()' || true)
  cache=$(grep -o '^cache: .*' "$log" | head -1 | sed 's/^cache: //' || true)
  base=$(grep -o '^base images: .*' "$log" | head -1 | sed 's/^base images: //' || true)
  printf '| %s | %s | %s | %.2f s | %s | %s | %s |\n' "$runner" "$round" "$b" "$(echo "$e - $s" | bc -l)" \
    "$steps" "${cache:-no cache yet}" "${base:-none}"
}

for b in main a b c; do branch "$b"; done
echo "| runner | round | branch | time | steps | from the cache | base image layers |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
job runner-0 1 main
for round in 1 2; do
  pids=()
  for r in 1 2 3; do
    b=$(echo "a b c" | cut -d' ' -f$r)
    job "runner-$r" "$round" "$b" > "$W/line-$r" & pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  cat "$W/line-1" "$W/line-2" "$W/line-3"
done
