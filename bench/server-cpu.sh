#!/usr/bin/env bash
# Server CPU per request with the server and the load generator pinned to
# different cores (server on the last CPU, load generator on the others),
# so the load generator's work never lands on the server's core.
#
#   bench/server-cpu.sh [SERVER_BIN] [ROUNDS]    (defaults: target/release/registry-server, 3)
#   PERF=1 bench/server-cpu.sh                   # also a perf profile of the server, one round
#
# Each round starts one server on free loopback ports, registers 3
# services through gossip and runs gRPC Match and Members and HTTP
# /v1/match at concurrency 1 and 16, 5 s each (target/release/registry-bench,
# built by `cargo build --release -p registry-server -p registry-tools`).
# Prints each round's table and the load average before it. With PERF=1 the
# flat report (hottest symbols) goes to
# target/tmp/perf-server.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/target/release/registry-server}
rounds=${2:-3}
bench=$here/target/release/registry-bench
for b in "$bin" "$bench"; do
  [ -x "$b" ] || { echo "missing $b: cargo build --release -p registry-server -p registry-tools" >&2; exit 1; }
done
command -v taskset >/dev/null || { echo "needs taskset (util-linux)" >&2; exit 1; }
cpus=$(nproc)
[ "$cpus" -ge 2 ] || { echo "needs at least 2 CPUs to pin the server apart" >&2; exit 1; }
server_cpu=$((cpus - 1))
load_cpus=0-$((cpus - 2))
if [ -n "${PERF:-}" ]; then
  command -v perf >/dev/null || { echo "PERF=1 needs perf (Debian: apt-get install linux-perf)" >&2; exit 1; }
  rounds=1
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pid= perf_pid=
cleanup() {
  for p in $perf_pid $pid; do kill -INT "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

for r in $(seq "$rounds"); do
  grpc=$(free_port); http=$(free_port); gossip=$(free_port)
  RUST_LOG=warn taskset -c "$server_cpu" "$bin" --id "server-$r" --addr "127.0.0.1:$grpc" \
    --http-addr "127.0.0.1:$http" --bind "127.0.0.1:$gossip" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$http/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  if [ -n "${PERF:-}" ]; then
    mkdir -p "$here/target/tmp"
    perf record -q -F 999 -p "$pid" -o "$here/target/tmp/perf-server.data" 2>/dev/null &
    perf_pid=$!
  fi
  printf '\n### round %s: server on CPU %s, load generator on CPU %s, load average %s\n\n' \
    "$r" "$server_cpu" "$load_cpus" "$(cut -d' ' -f1-3 /proc/loadavg)"
  taskset -c "$load_cpus" "$bench" --registry "127.0.0.1:$grpc" --http "127.0.0.1:$http" \
    --gossip "127.0.0.1:$gossip" --server-pid "$pid" --services 3 --concurrency 1,16
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; perf_pid=
    perf report -q -i "$here/target/tmp/perf-server.data" --no-children --sort symbol \
      --percent-limit 0.7 --stdio > "$here/target/tmp/perf-server.txt" 2>/dev/null || true
    echo "perf report: $here/target/tmp/perf-server.txt"
  fi
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
