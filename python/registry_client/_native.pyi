"""Type stubs of the native module registry_client._native (import from registry_client)."""

import asyncio
import os
from types import TracebackType
from typing import AsyncIterator, Callable, Dict, Iterable, Iterator, List, Literal, Optional, Sequence, Tuple, Type, Union, final

__all__ = [
    "__version__",
    "RING_ALGORITHM",
    "Service",
    "Ring",
    "Moves",
    "MovedRange",
    "Client",
    "GroupView",
    "GroupInfo",
    "ViewChange",
    "Registration",
    "_connect_async",
    "_match_async",
    "_match_n_async",
    "_members_async",
    "_groups_async",
    "_group_async",
]

__version__: str
#: Name of the ring algorithm; every front door and server uses the same one.
RING_ALGORITHM: str

@final
class Service:
    """An immutable service instance, as registered and as discovered."""

    def __new__(
        cls,
        id: str,
        group: str,
        addr: str,
        weight: Optional[int] = None,
        tags: Optional[Dict[str, str]] = None,
    ) -> Service:
        """A service value, checked like a registration (InvalidArgumentError)."""
    @property
    def id(self) -> str:
        """Unique id of the instance within the cluster."""
    @property
    def group(self) -> str:
        """Group the instance belongs to."""
    @property
    def addr(self) -> str:
        """Address clients use to reach the instance."""
    @property
    def weight(self) -> int:
        """Relative share of the keys (1..=1000)."""
    @property
    def tags(self) -> Dict[str, str]:
        """Free-form metadata (a new dict on every access)."""
    @property
    def draining(self) -> bool:
        """True while the instance drains: listed, but owning no keys."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Ring:
    """A consistent-hash ring: exactly the ring the servers build."""

    def __new__(cls, members: Iterable[Union[str, Tuple[str, int], Tuple[str, int, bool]]]) -> Ring:
        """Builds a ring from bare ids (weight 1), (id, weight) pairs or (id, weight, draining)
        triples; a draining member is listed but owns no keys."""
    def locate(self, key: str) -> str:
        """Id of the member that owns ``key``."""
    def locate_n(self, key: str, n: int) -> List[str]:
        """Ids of up to ``n`` distinct members for ``key``, in preference order."""
    def moves_to(self, newer: Ring) -> Moves:
        """What moved from this ring to ``newer``: the key ranges whose owner changed."""
    @property
    def members(self) -> List[Tuple[str, int]]:
        """The members as (id, weight) pairs, sorted by id (draining ones included)."""
    @property
    def draining(self) -> List[str]:
        """Ids of the draining members (listed, owning no keys), sorted."""
    @property
    def checksum(self) -> int:
        """The ring's checksum (a u64 of the algorithm, ids, weights and states); ``f"{c:016x}"`` is the wire's text."""
    def __len__(self) -> int: ...

@final
class MovedRange:
    """Key positions ``first..=last`` whose owner changed from ``from_`` to ``to`` (immutable)."""

    @property
    def first(self) -> int:
        """First key position of the range."""
    @property
    def last(self) -> int:
        """Last key position of the range (inclusive)."""
    @property
    def from_(self) -> Optional[str]:
        """Owner id before the change (None: the old ring had no serving member)."""
    @property
    def to(self) -> Optional[str]:
        """Owner id after the change (None: the new ring has no serving member)."""
    @property
    def positions(self) -> int:
        """Number of key positions in the range (``last - first + 1``)."""
    def __contains__(self, position: int, /) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Moves:
    """What moved between an older and a newer ring (``Ring.moves_to``): the sorted ranges
    of key positions whose owner changed. Iterating gives the ranges."""

    @property
    def ranges(self) -> List[MovedRange]:
        """The moved ranges, sorted by position (a new list on every access)."""
    def at(self, position: int) -> Optional[MovedRange]:
        """The range holding key position ``position`` (0..=2**32-1), or None when it kept its owner."""
    def of_key(self, key: str) -> Optional[MovedRange]:
        """The range of ``key`` (from whom to whom), or None when its owner stayed the same."""
    def lost_by(self, id: str) -> List[MovedRange]:
        """Ranges member ``id`` owned before and no longer owns: the keys it hands off."""
    def gained_by(self, id: str) -> List[MovedRange]:
        """Ranges member ``id`` owns now and did not before: the keys it takes over."""
    @property
    def fraction(self) -> float:
        """Fraction of the key space that changed owner, from 0.0 to 1.0."""
    @property
    def positions(self) -> int:
        """Number of key positions that changed owner, in all (at most 2**32)."""
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[MovedRange]: ...

@final
class GroupInfo:
    """Summary of one group, from Client.groups()."""

    @property
    def name(self) -> str:
        """Group name."""
    @property
    def members(self) -> int:
        """Number of members."""
    @property
    def version(self) -> int:
        """Ring version on the registry that answered."""
    @property
    def checksum(self) -> int:
        """Checksum of the group's ring on the registry that answered (equal on registries that agree)."""

@final
class Client:
    """A discovery client with failover across several registries. Thread-safe."""

    def __new__(
        cls,
        registries: Union[str, Iterable[str]],
        *,
        connect_timeout: Optional[float] = None,
        request_timeout: Optional[float] = None,
        attempts: Optional[int] = None,
        discover_registries: bool = True,
        tls_ca: Optional[Union[str, os.PathLike[str], bytes]] = None,
        tls_cert: Optional[Union[str, os.PathLike[str], bytes]] = None,
        tls_key: Optional[Union[str, os.PathLike[str], bytes]] = None,
        tls_domain: Optional[str] = None,
        max_staleness: Optional[float] = None,
    ) -> Client:
        """A client for ``"host:port"`` registry addresses (InvalidArgumentError if malformed).

        ``tls_ca`` (the CA of the registries' certificates: a PEM file path, or the PEM
        itself as ``bytes``) turns TLS on; ``tls_cert``/``tls_key`` (the same) add a
        client certificate; ``tls_domain`` overrides the name expected in the registry
        certificates. ``max_staleness`` (seconds): a view's ``match``, ``match_n`` and
        ``route`` raise UnavailableError once its snapshot has gone unconfirmed for
        longer (None: they answer from the last snapshot however old).
        """
    def match(self, group: str, key: str) -> Service:
        """The member of ``group`` that owns ``key``, asked of a registry."""
    def match_n(self, group: str, key: str, n: int) -> List[Service]:
        """Up to ``n`` distinct members of ``group`` for ``key``, in preference order."""
    def members(self, group: str) -> List[Service]:
        """Every member of ``group``, sorted by id (empty when it has none)."""
    def groups(self) -> List[GroupInfo]:
        """Every group that has members."""
    def group(self, name: str) -> GroupView:
        """A local view of ``name`` kept current through Watch (waits for the first snapshot).

        Raises ``LimitExceededError`` when every registry refuses the stream (``--max-watch-streams``).
        """
    @property
    def registries(self) -> List[str]:
        """Registry addresses this client knows, including discovered ones."""
    @property
    def closed(self) -> bool:
        """True once close() was called."""
    def close(self) -> None:
        """Closes the client and every view opened through it (idempotent)."""
    def __enter__(self) -> Client: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Literal[False]: ...

@final
class ViewChange:
    """One change of a view's snapshot: the rings before and after it."""

    @property
    def old_version(self) -> int: ...
    @property
    def new_version(self) -> int: ...
    @property
    def old_checksum(self) -> int: ...
    @property
    def new_checksum(self) -> int: ...
    @property
    def old_ring(self) -> Ring: ...
    @property
    def new_ring(self) -> Ring: ...
    def moves(self) -> Moves:
        """What moved: the key ranges whose owner changed, and to whom."""

@final
class GroupView:
    """A group followed locally: lookups answer from a local ring, no round trip. Thread-safe."""

    def on_change(self, callback: Callable[[ViewChange], object]) -> None:
        """Calls ``callback(change)`` once per change from now on, on a library thread
        (GIL held), in order; merged when it lags. Stops when the view closes."""
    def changes(self) -> AsyncIterator[ViewChange]:
        """``async for change in view.changes()``: the changes from now on, for the
        running event loop; ends when the view closes."""

    def match(self, key: str) -> Service:
        """The member that owns ``key`` (NotFoundError when the group is empty)."""
    def match_n(self, key: str, n: int) -> List[Service]:
        """Up to ``n`` distinct members for ``key``, in preference order."""
    def route(self, key: str, self_id: str) -> Optional[Service]:
        """Handle-or-forward for member ``self_id``: None to handle ``key`` here, else the owner to forward to."""
    def members(self) -> List[Service]:
        """Members sorted by id."""
    def ring(self) -> Ring:
        """The ring of the snapshot in use; later snapshots do not change it (compare two with ``moves_to``)."""
    @property
    def name(self) -> str:
        """Name of the group followed."""
    @property
    def version(self) -> int:
        """Ring version of the snapshot in use, as numbered by the registry."""
    @property
    def checksum(self) -> int:
        """Ring checksum of the snapshot in use; equal to the registry's (a mismatch is refused)."""
    @property
    def connected(self) -> bool:
        """True while a Watch stream is open; False while resubscribing."""
    @property
    def staleness(self) -> float:
        """Seconds the snapshot has gone unconfirmed: 0.0 while a Watch stream is open."""
    def wait_for_change(self, timeout: Optional[float] = None) -> bool:
        """Waits for a snapshot newer than the last one reported; True if one arrived
        within ``timeout`` seconds (at once if it came between two calls)."""
    def close(self) -> None:
        """Stops following the group (idempotent)."""
    def __enter__(self) -> GroupView: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Literal[False]: ...

@final
class Registration:
    """A service instance registered in the cluster between start() and stop(). Thread-safe."""

    def __new__(
        cls,
        id: str,
        group: str,
        addr: str,
        bind: str,
        advertise: Optional[str] = None,
        registries: Union[str, Iterable[str], None] = None,
        weight: Optional[int] = None,
        tags: Optional[Dict[str, str]] = None,
        encrypt_key: Union[str, bytes, Sequence[Union[str, bytes]], None] = None,
    ) -> Registration:
        """Describes a registration (checked here); nothing goes on the network until start()."""
    def start(self) -> None:
        """Binds and joins; waits (at most 2 s) for the id check: AlreadyExistsError when a live member holds the id. A no-op when started."""
    def update(
        self,
        *,
        group: Optional[str] = None,
        addr: Optional[str] = None,
        weight: Optional[int] = None,
        tags: Optional[Dict[str, str]] = None,
        draining: Optional[bool] = None,
    ) -> None:
        """Changes the given fields; registries see an update. Invalid changes change nothing.

        ``draining=True``: listed but owning no keys (hand their state over,
        then ``stop()`` moves no key); ``draining=False`` takes them back."""
    def stop(self) -> None:
        """Leaves gracefully (registries drop the service at once); a no-op when stopped."""
    @property
    def running(self) -> bool:
        """True between start() and stop()."""
    @property
    def joined(self) -> bool:
        """True once a registry (or another member) knows this instance."""
    @property
    def service(self) -> Service:
        """The metadata registered (or to be registered)."""
    @property
    def local_addr(self) -> str:
        """Local gossip address "ip:port" (UnavailableError when not started)."""
    def __enter__(self) -> Registration: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Literal[False]: ...

# The native asyncio calls behind AsyncClient (registry_client._aio): each
# returns a future of the running event loop, resolved by a task on the
# library's runtime; cancelling the future drops the call in the core.

def _connect_async(
    registries: Union[str, Iterable[str]],
    *,
    connect_timeout: Optional[float] = None,
    request_timeout: Optional[float] = None,
    attempts: Optional[int] = None,
    discover_registries: bool = True,
    tls_ca: Optional[Union[str, os.PathLike[str], bytes]] = None,
    tls_cert: Optional[Union[str, os.PathLike[str], bytes]] = None,
    tls_key: Optional[Union[str, os.PathLike[str], bytes]] = None,
    tls_domain: Optional[str] = None,
    max_staleness: Optional[float] = None,
) -> asyncio.Future[Client]:
    """A Client (as ``Client(...)`` makes), created without blocking the event loop."""
def _match_async(client: Client, group: str, key: str) -> asyncio.Future[Service]:
    """``client.match(group, key)`` as a future of the running loop."""
def _match_n_async(client: Client, group: str, key: str, n: int) -> asyncio.Future[List[Service]]:
    """``client.match_n(group, key, n)`` as a future of the running loop."""
def _members_async(client: Client, group: str) -> asyncio.Future[List[Service]]:
    """``client.members(group)`` as a future of the running loop."""
def _groups_async(client: Client) -> asyncio.Future[List[GroupInfo]]:
    """``client.groups()`` as a future of the running loop."""
def _group_async(client: Client, name: str) -> asyncio.Future[GroupView]:
    """``client.group(name)`` as a future of the running loop."""
