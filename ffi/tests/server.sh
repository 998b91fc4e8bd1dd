# Sourced by scripts/test-ffi: builds registry-server and starts one on
# 127.0.0.1 with free ports for the C and Go tests. On success sets
# registry_addr (gRPC host:port), registry_gossip (gossip host:port) and
# server_pid, and exports REGISTRY_GOSSIP_ADDR; otherwise sets
# server_skip_reason. The caller stops the server (kill $server_pid).
# start_tls_registry_server starts a second one serving TLS.
server_skip_reason=
FFI_TEST_GROUP=ffi-example

# Prints n free loopback ports (TCP and UDP both free).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
held, ports = [], []
while len(ports) < int(sys.argv[1]):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        t.close(); continue
    held += [t, u]
    ports.append(port)
print(" ".join(map(str, ports)))
PY
}

# Starts registry-server (already built) with free ports and EXTRA flags,
# logging to LOG; waits until its gRPC port accepts connections. On success
# sets launched_pid, launched_grpc and launched_gossip (host:port); else
# sets server_skip_reason and returns 1. A port found free can be taken by
# another process before the server binds it: then it tries new ports, up
# to 3 times.
launch_server() {
  local try
  for try in 1 2 3; do
    if launch_server_once "$@"; then return 0; fi
    grep -q "already in use" "$1" 2>/dev/null || return 1
    echo "registry-server: a port was taken meanwhile (try $try of 3): $(cat "$1")" >&2
  done
  return 1
}

launch_server_once() {
  local log=$1; shift
  local bin=$root/target/debug/registry-server
  if [ ! -x "$bin" ]; then server_skip_reason="no $bin"; return 1; fi
  if ! command -v python3 >/dev/null 2>&1; then server_skip_reason="python3 is needed to find free ports"; return 1; fi
  local grpc http gossip pid
  read -r grpc http gossip < <(free_ports 3)
  RUST_LOG=${RUST_LOG:-warn} "$bin" \
    --addr "127.0.0.1:$grpc" --http-addr "127.0.0.1:$http" --bind "127.0.0.1:$gossip" "$@" \
    >"$log" 2>&1 &
  pid=$!
  # Ready when the gRPC port accepts connections (at most 20 s).
  for _ in $(seq 1 200); do
    if ! kill -0 "$pid" 2>/dev/null; then
      server_skip_reason="registry-server exited at start (see $log)"
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$grpc") 2>/dev/null; then
      launched_pid=$pid
      launched_grpc=127.0.0.1:$grpc
      launched_gossip=127.0.0.1:$gossip
      return 0
    fi
    sleep 0.1
  done
  server_skip_reason="registry-server did not listen within 20 s (see $log)"
  kill "$pid" 2>/dev/null || true
  return 1
}

start_registry_server() {
  if ! cargo build -p registry-server --locked >"$out/server-build.log" 2>&1; then
    server_skip_reason="registry-server does not build (see $out/server-build.log)"
    return 1
  fi
  launch_server "$out/server.log" --id ffi-test-registry || return 1
  server_pid=$launched_pid
  registry_addr=$launched_grpc
  registry_gossip=$launched_gossip
  export REGISTRY_GOSSIP_ADDR=$registry_gossip
}

# Writes test certificates into $out/tls (server/examples/tls-test-certs)
# and starts a second registry-server that serves TLS only and requires
# client certificates from the test CA. On success sets tls_server_pid and
# exports REGISTRY_TLS_ADDR and REGISTRY_TLS_DIR for the C and Go tests.
start_tls_registry_server() {
  local dir=$out/tls
  rm -rf "$dir"
  if ! cargo run -q -p registry-server --locked --example tls-test-certs -- "$dir" >"$out/tls-certs.log" 2>&1; then
    server_skip_reason="the test certificates could not be made (see $out/tls-certs.log)"
    return 1
  fi
  launch_server "$out/server-tls.log" --id ffi-test-tls-registry \
    --tls-cert "$dir/server.pem" --tls-key "$dir/server-key.pem" --tls-client-ca "$dir/ca.pem" || return 1
  tls_server_pid=$launched_pid
  export REGISTRY_TLS_ADDR=$launched_grpc
  export REGISTRY_TLS_DIR=$dir
}
