# Sourced by demo.sh, bench.sh and fleet.sh: Debian's docker-registry on 127.0.0.1 (plain HTTP).
#
# start_registry DIR FIRST_PORT: serves from the first free port at or above FIRST_PORT, storing in
# DIR/data-PORT and logging to DIR/log-PORT; appends its pid to DIR/pids (the caller's EXIT trap
# kills them) and prints the port once it listens, or fails with the registry's log after 10 s.
start_registry() {
  local dir=$1 p=$2
  while (echo > "/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$dir/data-$p" "$p" > "$dir/config-$p.yml"
  docker-registry serve "$dir/config-$p.yml" >"$dir/log-$p" 2>&1 &
  echo $! >> "$dir/pids"
  for _ in $(seq 1 100); do
    if (echo > "/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    sleep 0.1
  done
  echo "docker-registry did not start on 127.0.0.1:$p:" >&2; cat "$dir/log-$p" >&2
  return 1
}

# stop_registries DIR: kills what start_registry started there.
stop_registries() {
  kill $(cat "$1/pids" 2>/dev/null) 2>/dev/null || true
}
