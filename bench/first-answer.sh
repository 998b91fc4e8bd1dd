#!/usr/bin/env bash
# Time to a first answer, per front door, on a fresh clone: what a new
# user waits for between `git clone` and a registry answering them.
#
#   bench/first-answer.sh [REPO]      (default: this checkout's HEAD)
#
# Clones REPO into a temporary folder with an empty target/ of its own
# (crates already in ~/.cargo are not downloaded again; say so when you
# quote the figures), then times, one after the other:
#   operator  `cargo run -p registry-server` until /v1/groups answers
#   rust      `cargo run -p registry-core --example quickstart` (after the operator's build)
#   dist      ./scripts/dist (release build of everything a release ships)
#   python    fresh venv + `pip install registry-client --find-links dist/` + a first Match
#   c         ./scripts/install + cc with pkg-config + the example's first Match
#   go        the Go example, empty build cache, through pkg-config + first Match
# Prints a Markdown table. Everything runs on 127.0.0.1 with free ports;
# every process started is stopped. Takes 10-20 minutes on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
repo=${1:-$here}
work=$(mktemp -d /tmp/registry-first-answer.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
results=()

git clone -q "$repo" "$work/repo"
cd "$work/repo"
unset CARGO_TARGET_DIR
export RUST_LOG=warn
grpc=$(free_port); http=$(free_port); gossip=$(free_port)
registry=127.0.0.1:$grpc
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

# operator: the README's first command, with free ports from the environment.
t=$(now)
REGISTRY_ADDR=$registry REGISTRY_HTTP_ADDR=127.0.0.1:$http REGISTRY_BIND=127.0.0.1:$gossip \
  cargo run -q -p registry-server >"$work/server.log" 2>&1 &
pids+=($!)
until curl -sf "http://127.0.0.1:$http/v1/groups" >/dev/null 2>&1; do sleep 0.2; done
results+=("| operator | \`cargo run -p registry-server\` until /v1/groups answers | $(since "$t") |")

# rust: the README's program (registers, follows its group, one Match, stops).
t=$(now)
cargo run -q -p registry-core --example quickstart -- "127.0.0.1:$gossip" "$registry" >"$work/rust.out"
results+=("| Rust | \`cargo run -p registry-core --example quickstart\` (after the above) | $(since "$t") |")

# two services for the other front doors to match against
cargo build -q -p registry-server --bin registry --bin registry-example-service
for n in 1 2; do
  target/debug/registry-example-service --id "first-$n" --group first --addr "127.0.0.1:$(free_port)" \
    --registries "127.0.0.1:$gossip" >"$work/web-$n.log" 2>&1 &
  pids+=($!)
done
until [ "$(target/debug/registry --registry "$registry" members first 2>/dev/null | grep -c '^first-')" = 2 ]; do sleep 0.2; done

t=$(now)
./scripts/dist >"$work/dist.log" 2>&1
results+=("| (release) | \`./scripts/dist\` (all of dist/) | $(since "$t") |")

t=$(now)
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q registry-client --find-links dist/
"$work/venv/bin/python" -c "import registry_client as r; print(r.Client(['$registry']).match('first', 'user-42').id)"
results+=("| Python | venv + \`pip install registry-client --find-links dist/\` + a Match (after dist) | $(since "$t") |")

t=$(now)
./scripts/install "$work/prefix" >/dev/null
export PKG_CONFIG_PATH=$work/prefix/lib/pkgconfig
# shellcheck disable=SC2046
cc examples/c/registry_example.c $(pkg-config --cflags --libs registry) -o "$work/c-example"
"$work/c-example" -r "$registry" -g first -n 10 >/dev/null
results+=("| C | install + \`cc ... \$(pkg-config --cflags --libs registry)\` + a Match (after dist) | $(since "$t") |")

t=$(now)
(cd examples/go && GOCACHE=$work/gocache GOFLAGS=-buildvcs=false go build -o "$work/go-example" .)
"$work/go-example" -r "$registry" -g first -n 10 >/dev/null
results+=("| Go | \`go build\` (empty build cache) + a Match (after install) | $(since "$t") |")

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| front door | what | seconds |"
echo "| --- | --- | ---: |"
printf '%s\n' "${results[@]}"
