"""AsyncClient: native asyncio calls. An await holds no thread, cancelling
it drops the call in the core, and errors are those of the blocking Client."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from typing import List, Set, Tuple

import pytest

from conftest import wait_until
from registry_client import (
    AsyncClient,
    Client,
    InvalidArgumentError,
    NotFoundError,
    Registration,
    Ring,
    UnavailableError,
)

GROUP = "aio-service"


def thread_count() -> int:
    """Threads of this process right now."""
    return len(os.listdir("/proc/self/task"))


def executor_threads() -> int:
    """How many threads the loop's default executor may start (what the
    executor-based AsyncClient could add under load)."""
    return min(32, (os.cpu_count() or 1) + 4)


@pytest.fixture
def three_services(server):
    """Three instances of GROUP, weights 1..3, stopped at teardown."""
    regs = [
        Registration(
            "aio-%d" % i, GROUP, "127.0.0.1:%d" % (8400 + i), bind="127.0.0.1:0", registries=[server.gossip], weight=i
        )
        for i in (1, 2, 3)
    ]
    for r in regs:
        r.start()
    try:
        with Client([server.grpc]) as c:
            wait_until(lambda: len(c.members(GROUP)) == 3, what="three members")
        yield regs
    finally:
        for r in regs:
            r.stop()


def test_a_thousand_concurrent_matches_add_no_thread(server, three_services):
    ring = Ring([("aio-1", 1), ("aio-2", 2), ("aio-3", 3)])
    keys = ["user-%d" % i for i in range(1000)]

    async def main() -> Tuple[List[str], int, int]:
        async with await AsyncClient.connect([server.grpc]) as c:
            await c.match(GROUP, "warm-up")  # runtime and delivery thread exist from here on
            baseline = thread_count()
            peak = baseline
            done = asyncio.Event()

            async def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, thread_count())
                    await asyncio.sleep(0.001)

            sampler = asyncio.ensure_future(sample())
            try:
                owners = await asyncio.gather(*(c.match(GROUP, k) for k in keys))
            finally:
                done.set()
                await sampler
            peak = max(peak, thread_count())
            return [s.id for s in owners], baseline, peak

    owners, baseline, peak = asyncio.run(asyncio.wait_for(main(), 60))
    assert owners == [ring.locate(k) for k in keys]
    assert peak <= baseline + 2, (
        f"1,000 concurrent awaits took the process from {baseline} to {peak} threads; "
        f"the executor-based client would add up to {executor_threads()} (default executor max_workers)"
    )


class SilentRegistry:
    """A TCP listener that accepts and never answers: every RPC to it hangs.
    It reads the client's HTTP/2 frames, so a test can see which streams
    were opened (HEADERS) and which the client reset (RST_STREAM)."""

    def __init__(self) -> None:
        self.opened: Set[int] = set()
        self.reset: Set[int] = set()
        self.changed = asyncio.Event()
        self._server: "asyncio.base_events.Server | None" = None
        self._writers: List[asyncio.StreamWriter] = []

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return "127.0.0.1:%d" % port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        try:
            await reader.readexactly(24)  # the HTTP/2 client preface
            while True:
                header = await reader.readexactly(9)
                length = int.from_bytes(header[:3], "big")
                kind = header[3]
                stream = struct.unpack(">I", header[5:9])[0] & 0x7FFFFFFF
                await reader.readexactly(length)
                if kind == 0x1:  # HEADERS: a call began
                    self.opened.add(stream)
                elif kind == 0x3:  # RST_STREAM: the client dropped the call
                    self.reset.add(stream)
                self.changed.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    async def wait_for(self, cond, timeout: float, what: str) -> None:
        """Waits until ``cond()`` holds, as frames arrive."""
        deadline = time.monotonic() + timeout
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what}: opened {self.opened}, reset {self.reset}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in self._writers:
            w.close()


CALLS = {
    "match": lambda c: c.match(GROUP, "k"),
    "match_n": lambda c: c.match_n(GROUP, "k", 2),
    "members": lambda c: c.members(GROUP),
    "groups": lambda c: c.groups(),
    "group": lambda c: c.group(GROUP),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_cancelling_an_await_drops_the_call_in_the_core(call):
    async def main() -> None:
        silent = SilentRegistry()
        addr = await silent.start()
        try:
            c = await AsyncClient.connect(
                [addr], request_timeout=10.0, connect_timeout=10.0, attempts=1, discover_registries=False
            )
            async with c:
                baseline = thread_count()

                # asyncio.wait_for: a timeout far below request_timeout.
                start = time.monotonic()
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(CALLS[call](c), 0.2)
                took = time.monotonic() - start
                assert took < 1.0, f"wait_for(..., 0.2) returned after {took:.2f}s"
                await silent.wait_for(lambda: silent.opened and silent.opened <= silent.reset, 2.0,
                                      "the timed-out call's stream was not reset by the client")

                # task.cancel(): returns at once, and the core drops that call too.
                task = asyncio.ensure_future(CALLS[call](c))
                await silent.wait_for(lambda: len(silent.opened) >= 2, 2.0, "the second call never reached the wire")
                start = time.monotonic()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                took = time.monotonic() - start
                assert took < 0.5, f"a cancelled task took {took:.2f}s to end"
                await silent.wait_for(lambda: silent.opened <= silent.reset, 2.0,
                                      "the cancelled call's stream was not reset by the client")
                assert thread_count() <= baseline, "a thread is still busy with a cancelled call"
        finally:
            await silent.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_errors_are_those_of_the_blocking_client(server, three_services):
    async def main() -> None:
        async with await AsyncClient.connect([server.grpc]) as c:
            sync = c.client
            for call, sync_call in [
                (lambda: c.match("no-such-group", "k"), lambda: sync.match("no-such-group", "k")),
                (lambda: c.match(GROUP, ""), lambda: sync.match(GROUP, "")),
                (lambda: c.match("", "k"), lambda: sync.match("", "k")),
                (lambda: c.match_n(GROUP, "k", 0), lambda: sync.match_n(GROUP, "k", 0)),
                (lambda: c.members(""), lambda: sync.members("")),
                (lambda: c.group(""), lambda: sync.group("")),
            ]:
                with pytest.raises(Exception) as sync_err:
                    sync_call()
                with pytest.raises(Exception) as async_err:
                    await call()
                assert type(async_err.value) is type(sync_err.value)
                assert str(async_err.value) == str(sync_err.value)
            with pytest.raises(NotFoundError):
                await c.match("no-such-group", "k")
            with pytest.raises(InvalidArgumentError, match="key"):
                await c.match(GROUP, "")
            with pytest.raises(TypeError):
                await c.match(GROUP, 42)  # type: ignore[arg-type]

    asyncio.run(asyncio.wait_for(main(), 30))


def test_unreachable_registry_raises_unavailable_without_blocking_the_loop():
    async def main() -> None:
        async with await AsyncClient.connect(["127.0.0.1:1"], connect_timeout=0.5, request_timeout=0.5) as c:
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            ticker = asyncio.ensure_future(tick())
            with pytest.raises(UnavailableError):
                await c.match(GROUP, "k")
            ticker.cancel()
            assert ticks > 3, "the event loop stood still while the call failed over"

    asyncio.run(asyncio.wait_for(main(), 30))


def test_async_with_closes_the_client_and_its_views(server, three_services):
    async def main() -> None:
        async with await AsyncClient.connect([server.grpc]) as c:
            view = await c.group(GROUP)
            assert len(view.members()) == 3
            assert not c.client.closed
        assert c.client.closed
        with pytest.raises(UnavailableError, match="closed"):
            await c.match(GROUP, "k")
        with pytest.raises(UnavailableError, match="closed"):
            view.match("k")

        with pytest.raises(KeyError):
            async with AsyncClient([server.grpc]) as c2:
                raise KeyError("boom")
        assert c2.client.closed

    asyncio.run(asyncio.wait_for(main(), 30))

