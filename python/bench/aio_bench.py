"""AsyncClient.match: the native asyncio client against the executor-based one.

    python python/bench/aio_bench.py [--server PATH] [--members 10] [--seconds 2] [--runs 5]

Measures, against a local registry-server it starts (and stops on exit):
  * RPC/s of `await match(...)` with 1 and 64 coroutines in flight, median of
    --runs runs of --seconds each, and the process CPU time per call;
  * the thread count of the process while 1,000 awaits are in flight.
"native" is AsyncClient.match (the core's future on the shared runtime);
"executor" is the former design, kept here only for comparison: the blocking
Client.match in the event loop's default executor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Awaitable, Callable, List

import registry_client
from registry_client import AsyncClient, Client, Registration, Service

ROOT = pathlib.Path(__file__).resolve().parents[2]
GROUP = "bench"

Match = Callable[[str], Awaitable[Service]]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def native(client: AsyncClient) -> Match:
    return lambda key: client.match(GROUP, key)


def executor(client: AsyncClient) -> Match:
    """The executor-based AsyncClient.match this package had before."""
    blocking = client.client

    def call(key: str) -> Awaitable[Service]:
        return asyncio.get_running_loop().run_in_executor(None, blocking.match, GROUP, key)

    return call


async def run_once(match: Match, concurrency: int, seconds: float) -> tuple[float, float]:
    """(calls/s, process CPU µs per call) with `concurrency` coroutines calling for `seconds`."""
    keys = [f"user-{i}" for i in range(500)]
    calls = [0] * concurrency
    deadline = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            await match(keys[(i * 7 + n) % len(keys)])
            n += 1
        calls[i] = n

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    total = sum(calls)
    return total / wall, cpu / max(total, 1) * 1e6


async def peak_threads(match: Match, n: int) -> tuple[int, int]:
    """(threads before, most threads seen) while `n` awaits are in flight."""
    before = threads()
    peak = before
    done = False

    async def sample() -> None:
        nonlocal peak
        while not done:
            peak = max(peak, threads())
            await asyncio.sleep(0.001)

    sampler = asyncio.ensure_future(sample())
    await asyncio.gather(*(match(f"user-{i}") for i in range(n)))
    done = True
    await sampler
    return before, max(peak, threads())


async def measure(kind: str, grpc: str, args: argparse.Namespace) -> None:
    """All figures of one kind, in an event loop (and default executor) of its own."""
    async with await AsyncClient.connect([grpc]) as client:
        match = native(client) if kind == "native" else executor(client)
        await match("warm-up")
        before, peak = await peak_threads(match, 1000)
        print(f"{kind:<9} threads at 1,000 concurrent awaits: {before} before, {peak} at most "
              f"(+{peak - before})", flush=True)
        for concurrency in (1, 64):
            runs = [await run_once(match, concurrency, args.seconds) for _ in range(args.runs)]
            rates: List[float] = [r for r, _ in runs]
            cpus: List[float] = [c for _, c in runs]
            print(f"{kind:<9} concurrency {concurrency:>2}: {statistics.median(rates):>8,.0f} RPC/s median "
                  f"(min {min(rates):,.0f}, max {max(rates):,.0f}), "
                  f"{statistics.median(cpus):>5.0f} µs process CPU per call", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", default=os.environ.get("REGISTRY_SERVER_BIN")
                   or str(ROOT / "target" / "release" / "registry-server"))
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--seconds", type=float, default=2.0, help="length of one run")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()

    print(f"registry_client {registry_client.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs, default executor max_workers "
          f"{min(32, (os.cpu_count() or 1) + 4)}", flush=True)
    grpc, http, gossip = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [args.server, "--id", "aio-bench", "--addr", f"127.0.0.1:{grpc}",
         "--http-addr", f"127.0.0.1:{http}", "--bind", f"127.0.0.1:{gossip}"],
        stdout=log, stderr=subprocess.STDOUT)
    regs: List[Registration] = []
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", grpc), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        regs = [Registration(f"svc-{i:03d}", GROUP, f"127.0.0.1:{10000 + i}", "127.0.0.1:0",
                             registries=[f"127.0.0.1:{gossip}"]) for i in range(args.members)]
        for r in regs:
            r.start()
        with Client([f"127.0.0.1:{grpc}"]) as client:
            deadline = time.monotonic() + 60
            while len(client.members(GROUP)) < args.members:
                if time.monotonic() > deadline:
                    sys.exit("the members did not all join")
                time.sleep(0.1)
        # Native first: the executor's threads, once started, stay for the
        # life of their loop, and each kind runs in a loop of its own.
        for kind in ("native", "executor"):
            asyncio.run(measure(kind, f"127.0.0.1:{grpc}", args))
    finally:
        for r in regs:
            r.stop()
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
