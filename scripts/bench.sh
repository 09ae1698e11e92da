#!/usr/bin/env bash
# Benchmarks lighter side by side with docker build (BuildKit) in one run and prints the figures that
# BENCHMARKS.md records. Usage: bash scripts/bench.sh [context|run|save|parse|analyze|all]
# Needs root (RUN sandbox, dockerd). Work files go to $BENCH_DIR (default /var/tmp/lighter-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}

bash scripts/setup-peers.sh
CACHE=$(bash scripts/make-bases.sh)
BENCH_DIR=${BENCH_DIR:-/var/tmp/lighter-bench}
mkdir -p "$BENCH_DIR"
cargo build --release --quiet -p lighter
L="$PWD/target/release/lighter"
D=/usr/bin/docker
export DOCKER_BUILDKIT=1
export LIGHTER_ROOT="$BENCH_DIR/store"

# secs CMD...: wall seconds of one run, 3 decimals
# A failing command aborts the benchmark: a timing of a failed build is not a result.
secs() {
  local s e
  s=$(date +%s.%N)
  if ! "$@" >/tmp/lighter-bench-step.log 2>&1; then
    echo "bench: FAILED: $*" >&2; tail -20 /tmp/lighter-bench-step.log >&2; exit 1
  fi
  e=$(date +%s.%N); echo "$e - $s" | bc -l | xargs printf '%.3f'
}
# peak_mb CMD...: peak RSS in MB
peak_mb() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.0f", $1/1024}'; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4"; }

have_docker() { $D info >/dev/null 2>&1; }
ensure_bases() {
  "$L" inspect busybox:latest >/dev/null 2>&1 || "$L" import "$CACHE/busybox.tar" busybox:latest >/dev/null
  if have_docker; then
    $D image inspect busybox:latest >/dev/null 2>&1 || $D import "$CACHE/busybox.tar" busybox:latest >/dev/null
  fi
}

bench_context() {
  local ctx="$BENCH_DIR/context"
  [ -f "$ctx/Dockerfile" ] || python3 scripts/bench/gen_context.py "$ctx"
  echo "## context: 50,000 files + ignored 190 MB node_modules, FROM scratch + COPY . /ctx/"
  row step lighter docker ratio; row --- --- --- ---
  local lc ln l1 dc dn d1 mem
  lc=$(secs "$L" build --no-cache -t bench-ctx "$ctx")
  ln=$(secs "$L" build -t bench-ctx "$ctx")
  echo "changed $(date +%s%N)" > "$ctx/src/d007/f0001.txt"
  l1=$(secs "$L" build -t bench-ctx "$ctx")
  mem=$(peak_mb "$L" build --no-cache -t bench-ctx "$ctx")
  if have_docker; then
    dc=$(secs $D build --no-cache -t bench-ctx "$ctx")
    dn=$(secs $D build -t bench-ctx "$ctx")
    echo "changed $(date +%s%N)" > "$ctx/src/d007/f0001.txt"
    d1=$(secs $D build -t bench-ctx "$ctx")
  else dc=NA; dn=NA; d1=NA; fi
  row "cold (--no-cache)" "$lc s" "$dc s" "$( [ $dc = NA ] && echo NA || ratio $lc $dc)"
  row "no-op rebuild" "$ln s" "$dn s" "$( [ $dn = NA ] && echo NA || ratio $ln $dn)"
  row "one file changed" "$l1 s" "$d1 s" "$( [ $d1 = NA ] && echo NA || ratio $l1 $d1)"
  row "peak memory (cold)" "$mem MB" "" ""
}

bench_run() {
  ensure_bases
  local dir="$BENCH_DIR/run20"; mkdir -p "$dir"
  { echo "FROM busybox:latest"; for i in $(seq 1 20); do echo "RUN true # $i"; done; } > "$dir/Dockerfile.run"
  { echo "FROM busybox:latest"; echo "LABEL x=1"; } > "$dir/Dockerfile.none"
  echo "## per-RUN overhead: 20 x RUN true, --no-cache, minus the same build with no RUN"
  row step lighter docker ratio; row --- --- --- ---
  local lr ln dr dn lp dp
  lr=$(secs "$L" build --no-cache -f "$dir/Dockerfile.run" "$dir")
  ln=$(secs "$L" build --no-cache -f "$dir/Dockerfile.none" "$dir")
  lp=$(echo "($lr - $ln) * 1000 / 20" | bc -l | xargs printf '%.1f')
  if have_docker; then
    dr=$(secs $D build --network host --no-cache -f "$dir/Dockerfile.run" "$dir")
    dn=$(secs $D build --network host --no-cache -f "$dir/Dockerfile.none" "$dir")
    dp=$(echo "($dr - $dn) * 1000 / 20" | bc -l | xargs printf '%.1f')
  else dr=NA; dn=NA; dp=NA; fi
  row "20 RUN build" "$lr s" "$dr s" ""
  row "no-RUN build" "$ln s" "$dn s" ""
  row "per RUN step" "$lp ms" "$dp ms" "$( [ $dp = NA ] && echo NA || ratio $lp $dp)"
}

bench_parse() {
  echo "## parser (cargo bench -p lighter-dockerfile)"
  cargo bench --quiet -p lighter-dockerfile 2>/dev/null | grep -E 'ms|µs|instructions|corpus' || echo "(no parse bench output)"
}

case "$what" in
  context) bench_context ;;
  run) bench_run ;;
  parse) bench_parse ;;
  all) bench_parse; bench_context; bench_run ;;
  *) echo "usage: bench.sh [context|run|parse|all]" >&2; exit 2 ;;
esac
