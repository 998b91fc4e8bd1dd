"""AsyncClient: the asyncio flavour of Client.

Each coroutine awaits the Rust core's own future, run as a task on the
library's shared runtime (the same two threads every blocking call uses):
an await holds no thread, so thousands of calls can be in flight at once,
and cancelling the awaiting task (``task.cancel()``, an
``asyncio.wait_for`` timeout) drops the call in the core. Errors are the
exceptions the blocking :class:`Client` raises. Local-view lookups
(``GroupView.match`` and friends) never block and are used directly,
without ``await``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable, List, Optional, Union

from ._native import (
    Client,
    GroupInfo,
    GroupView,
    Service,
    _connect_async,
    _group_async,
    _groups_async,
    _match_async,
    _match_n_async,
    _members_async,
)

__all__ = ["AsyncClient"]


class AsyncClient:
    """A :class:`Client` whose calls are awaitable.

    Create it with ``await AsyncClient.connect(registries)`` (which does not
    block the event loop) or ``AsyncClient(registries)`` (which may block
    for up to the connect timeout while it discovers the other registries).
    The options are those of :class:`Client`.
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
        """Creates the client (and discovers the other registries) without blocking the loop."""
        return cls._wrap(await _connect_async(registries, **options))

    @property
    def client(self) -> Client:
        """The underlying blocking Client (shares connections and views)."""
        return self._client

    async def match(self, group: str, key: str) -> Service:
        """The member of ``group`` that owns ``key``, asked of a registry."""
        return await _match_async(self._client, group, key)

    async def match_n(self, group: str, key: str, n: int) -> List[Service]:
        """Up to ``n`` distinct members of ``group`` for ``key``, in preference order."""
        return await _match_n_async(self._client, group, key, n)

    async def members(self, group: str) -> List[Service]:
        """Every member of ``group``, sorted by id."""
        return await _members_async(self._client, group)

    async def groups(self) -> List[GroupInfo]:
        """Every group that has members."""
        return await _groups_async(self._client)

    async def group(self, name: str) -> GroupView:
        """A local view of ``name``, once its first snapshot has come (closed with the client)."""
        return await _group_async(self._client, name)

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
