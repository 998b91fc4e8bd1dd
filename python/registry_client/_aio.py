"""AsyncClient: the asyncio flavour of Client.

It adds no second code path per call: each coroutine runs the very same
blocking method of :class:`Client` in the event loop's default executor.
Those methods release the GIL, so the event loop keeps running while a call
is in flight. Local-view lookups (``GroupView.match`` and friends) never
block and are used directly, without ``await``.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable, Iterable, List, Optional, TypeVar, Union

from ._native import Client, GroupInfo, GroupView, Service

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient:
    """A :class:`Client` whose calls are awaitable.

    Create it with ``await AsyncClient.connect(registries)`` (which does not
    block the event loop) or ``AsyncClient(registries)`` (which may block
    for up to the connect timeout while it discovers the other registries).
    """

    def __init__(self, registries: Union[str, Iterable[str]], **options: Any) -> None:
        self._client = Client(registries, **options)

    @classmethod
    def _wrap(cls, client: Client) -> "AsyncClient":
        self = cls.__new__(cls)
        self._client = client
        return self

    @classmethod
    async def connect(cls, registries: Union[str, Iterable[str]], **options: Any) -> "AsyncClient":
        """Creates the client in the executor, so discovery does not block the loop."""
        client = await _run(functools.partial(Client, registries, **options))
        return cls._wrap(client)

    @property
    def client(self) -> Client:
        """The underlying blocking Client (shares connections)."""
        return self._client

    async def match(self, group: str, key: str) -> Service:
        """The member of ``group`` that owns ``key``, asked of a registry."""
        return await _run(self._client.match, group, key)

    async def match_n(self, group: str, key: str, n: int) -> List[Service]:
        """Up to ``n`` distinct members of ``group`` for ``key``, in preference order."""
        return await _run(self._client.match_n, group, key, n)

    async def members(self, group: str) -> List[Service]:
        """Every member of ``group``, sorted by id."""
        return await _run(self._client.members, group)

    async def groups(self) -> List[GroupInfo]:
        """Every group that has members."""
        return await _run(self._client.groups)

    async def group(self, name: str) -> GroupView:
        """A local view of ``name``; waits for its first snapshot without blocking the loop."""
        return await _run(self._client.group, name)

    async def close(self) -> None:
        """Closes the client and its views."""
        self._client.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> Optional[bool]:
        await self.close()
        return None

    def __repr__(self) -> str:
        return "Async" + repr(self._client)


async def _run(fn: Callable[..., T], *args: Any) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(fn, *args))


class ViewChanges:
    """The async iterator of ``GroupView.changes()``: one ``ViewChange`` per
    change of the view's snapshot; it ends when the view closes. Fed by the
    library's thread through the event loop, so an await holds no thread."""

    def __init__(self, queue: "asyncio.Queue[Any]") -> None:
        self._queue = queue

    def __aiter__(self) -> "ViewChanges":
        return self

    async def __anext__(self) -> Any:
        change = await self._queue.get()
        if change is None:
            # The view closed: later awaits end at once too.
            self._queue.put_nowait(None)
            raise StopAsyncIteration
        return change
