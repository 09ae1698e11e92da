#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each (default 300), seeded from the test corpora
# (BuildKit's parser and shell corpora, the .dockerignore cases, OCI fixtures, the hostile corpus).
# Usage: bash scripts/fuzz.sh [SECONDS] [TARGET...]
# libFuzzer needs nightly flags: the stable toolchain runs them with RUSTC_BOOTSTRAP=1. Corpora grow
# in $FUZZ_DIR (default /var/tmp/lighter-fuzz, outside the repository); crashes land in
# fuzz/artifacts/TARGET/. Prints a line per target: seconds, executions, crashes.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(dockerfile shell_word dockerignore layer_tar image_json reference)
conf=${LIGHTER_CONFORMANCE:-$(cd .. && pwd)/shared/conformance}
work=${FUZZ_DIR:-/var/tmp/lighter-fuzz}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1

seed() { # seed TARGET FILE...: copies each file (under 1 MB) into the target's corpus
  local t=$1; shift; mkdir -p "$work/$t"
  for f in "$@"; do
    [ -f "$f" ] && [ "$(stat -c %s "$f")" -lt 1048576 ] && cp "$f" "$work/$t/seed-$(sha256sum "$f" | cut -c1-16)"
  done
  return 0
}
hostile=crates/lighter/tests/hostile/corpus
seed dockerfile $(find "$conf/dockerfile-parser" examples -type f -name '*Dockerfile*' 2>/dev/null) $hostile/*.Dockerfile
seed dockerfile $(find "$conf/dockerfile-parser" -type f 2>/dev/null | head -400)
mkdir -p "$work/shell_word" "$work/dockerignore" "$work/reference"
# Shell words: one seed per corpus line (flag byte 0: backslash escape).
for f in "$conf/dockerfile-shell/envVarTest" "$conf/dockerfile-shell/wordsTest"; do
  [ -f "$f" ] || continue
  n=0; while IFS= read -r line && [ $n -lt 400 ]; do
    printf '\0%s' "${line%%|*}" > "$work/shell_word/seed-$(basename "$f")-$n"; n=$((n + 1))
  done < "$f"
done
# Not the 10,000-pattern file: 1 s in a release build, past the 10 s timeout under ASan.
seed dockerignore $(ls $hostile/*.dockerignore | grep -v 10k-patterns)
if [ -f "$conf/dockerignore/patternmatcher-cases.tsv" ]; then
  n=0; while IFS=$'\t' read -r pat path _ && [ $n -lt 400 ]; do
    printf '%s\n%s\n' "$path" "$pat" > "$work/dockerignore/seed-$n"; n=$((n + 1))
  done < "$conf/dockerignore/patternmatcher-cases.tsv"
fi
seed layer_tar $hostile/layer-*.tar
seed image_json $(find "$conf/oci-image-spec" "$conf/containers-image/manifest-testdata" -name '*.json' 2>/dev/null | head -400)
for r in busybox busybox:1.36 docker.io/library/busybox:latest localhost:5000/a/b:c@sha256:$(printf '%064d' 0) \
         UPPER/x a//b 127.0.0.1:5000/x_y-z.w:tag-1.2 '[::1]:5000/x'; do
  printf '%s' "$r" > "$work/reference/seed-$(printf '%s' "$r" | sha256sum | cut -c1-16)"
done

(cd fuzz && cargo fuzz build -O 2>&1 | tail -2) # every target: build takes at most one name
for t in "${targets[@]}"; do
  log="$work/$t.log"
  start=$(date +%s)
  set +e
  (cd fuzz && cargo fuzz run -O "$t" "$work/$t" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
     -max_len=262144 -print_final_stats=1) > "$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  crashes=$(ls fuzz/artifacts/"$t" 2>/dev/null | wc -l)
  echo "$t: $(( $(date +%s) - start )) s, $execs executions, exit $rc, $crashes artifacts ($log)"
done
