"""Throughput of registry_client from Python.

    python python/bench/bench.py [--server PATH] [--members 100] [--seconds 2]

Measures, on one Python thread:
  * Ring.locate            - the standalone ring (no server needed)
  * GroupView.match        - the local view, 100 members registered from Python
  * Client.match (RPC)     - one gRPC round trip per call, to a local registry-server
and Client.match from several threads (the GIL is released during the RPC).
Starts its own registry-server on free loopback ports and stops it on exit.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import registry_client
from registry_client import Client, Registration, Ring

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rate(fn, keys, seconds):
    """5 runs of ~seconds/5 each: (best calls/s by wall clock, median by wall
    clock, best calls per CPU-second of this thread). The CPU figure is the
    cost of a call even when other processes share the cores."""
    wall, cpu = [], []
    n = len(keys)
    for _ in range(5):
        calls = 0
        start, start_cpu = time.perf_counter(), time.thread_time()
        deadline = start + seconds / 5
        while True:
            for k in keys:
                fn(k)
            calls += n
            now = time.perf_counter()
            if now >= deadline:
                break
        wall.append(calls / (now - start))
        cpu.append(calls / max(time.thread_time() - start_cpu, 1e-9))
    return max(wall), statistics.median(wall), max(cpu)


def report(name, r):
    best, median, cpu = r
    print(f"{name:<34} {best:>11,.0f}/s best  {median:>11,.0f}/s median  "
          f"{1e9 / best:>7.0f} ns   | per CPU-s {cpu:>11,.0f}/s {1e9 / cpu:>6.0f} ns", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", default=os.environ.get("REGISTRY_SERVER_BIN")
                   or str(ROOT / "target" / "release" / "registry-server"))
    p.add_argument("--members", type=int, default=100)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=4)
    args = p.parse_args()

    print(f"registry_client {registry_client.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    keys = [f"user-{i}" for i in range(10_000)]
    ring = Ring([(f"svc-{i:03d}", 1) for i in range(args.members)])
    report(f"Ring.locate ({args.members} members)", rate(ring.locate, keys, args.seconds))

    grpc, http, gossip = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [args.server, "--id", "bench", "--addr", f"127.0.0.1:{grpc}",
         "--http-addr", f"127.0.0.1:{http}", "--bind", f"127.0.0.1:{gossip}"],
        stdout=log, stderr=subprocess.STDOUT)
    regs = []
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", grpc), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        regs = [Registration(f"svc-{i:03d}", "bench", f"127.0.0.1:{10000 + i}", "127.0.0.1:0",
                             registries=[f"127.0.0.1:{gossip}"]) for i in range(args.members)]
        for r in regs:
            r.start()
        with Client([f"127.0.0.1:{grpc}"]) as client:
            view = client.group("bench")
            deadline = time.monotonic() + 60
            while len(view.members()) < args.members:
                if time.monotonic() > deadline:
                    sys.exit(f"only {len(view.members())} members joined")
                view.wait_for_change(timeout=1.0)
            report(f"GroupView.match ({args.members} members)", rate(view.match, keys, args.seconds))

            rpc_keys = keys[:500]
            report("Client.match (RPC, 1 thread)",
                   rate(lambda k: client.match("bench", k), rpc_keys, args.seconds))

            counts = [0] * args.threads
            stop = threading.Event()

            def work(i):
                while not stop.is_set():
                    for k in rpc_keys[:50]:
                        client.match("bench", k)
                    counts[i] += 50

            threads = [threading.Thread(target=work, args=(i,)) for i in range(args.threads)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            time.sleep(args.seconds)
            stop.set()
            for t in threads:
                t.join()
            total = sum(counts) / (time.perf_counter() - start)
            print(f"{f'Client.match (RPC, {args.threads} threads)':<34} {total:>11,.0f}/s", flush=True)
    finally:
        for r in regs:
            r.stop()
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
