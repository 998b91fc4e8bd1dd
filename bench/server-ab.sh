#!/usr/bin/env bash
# Two registry-server builds side by side under the same load: server CPU
# per request, requests/s and RSS, rounds interleaved (A, B, A, B, ...) so
# a busy moment of the machine falls on both.
#
#   bench/server-ab.sh A_BIN B_BIN [ROUNDS]     (default 3 rounds)
#
# A_BIN and B_BIN are registry-server binaries (e.g. a release build of an
# older commit and target/release/registry-server). The load generator is
# this checkout's target/release/registry-bench (cargo build --release -p
# registry-tools) for both, so only the server differs. Each round starts
# one server on free loopback ports, registers 3 services through gossip,
# runs gRPC Match and HTTP /v1/match at concurrency 1 and 16, 5 s each, then
# stops it. Prints each round's table and the load average before it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
a=$1 b=$2 rounds=${3:-3}
bench=$here/target/release/registry-bench
[ -x "$bench" ] || { echo "build the load generator first: cargo build --release -p registry-tools" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pid=
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

one() {
  local label=$1 bin=$2 grpc http gossip
  grpc=$(free_port); http=$(free_port); gossip=$(free_port)
  RUST_LOG=warn "$bin" --id "server-$label" --addr "127.0.0.1:$grpc" --http-addr "127.0.0.1:$http" \
    --bind "127.0.0.1:$gossip" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$http/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  printf '\n### %s (%s), load average %s\n\n' "$label" "$bin" "$(cut -d' ' -f1-3 /proc/loadavg)"
  "$bench" --registry "127.0.0.1:$grpc" --http "127.0.0.1:$http" --gossip "127.0.0.1:$gossip" \
    --server-pid "$pid" --services 3 --concurrency 1,16
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

for r in $(seq "$rounds"); do
  echo "## round $r"
  one A "$a"
  one B "$b"
done
