"""registry_client: find which instance of a service group handles a key.

>>> from registry_client import Client
>>> with Client(["127.0.0.1:9800"]) as client:          # doctest: +SKIP
...     svc = client.match("user-service", "user-42")   # one RPC
...     view = client.group("user-service")             # local ring, kept current
...     svc = view.match("user-42")                     # no round trip

See README.md for the full tour.
"""

from __future__ import annotations

from ._errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    LimitExceededError,
    NotFoundError,
    RegistryError,
    RegistryTimeoutError,
    UnavailableError,
)
from ._native import (
    RING_ALGORITHM,
    Client,
    GroupInfo,
    GroupView,
    MovedRange,
    Moves,
    Registration,
    Ring,
    Service,
    ViewChange,
    __version__,
)
from ._aio import AsyncClient, ViewChanges

# Show the public path in tracebacks and reprs, not the private modules.
for _cls in (
    RegistryError,
    InvalidArgumentError,
    NotFoundError,
    AlreadyExistsError,
    UnavailableError,
    RegistryTimeoutError,
    LimitExceededError,
    AsyncClient,
    ViewChanges,
):
    _cls.__module__ = __name__
del _cls

__all__ = [
    "__version__",
    "RING_ALGORITHM",
    "AsyncClient",
    "Client",
    "GroupInfo",
    "GroupView",
    "MovedRange",
    "Moves",
    "Registration",
    "Ring",
    "Service",
    "RegistryError",
    "InvalidArgumentError",
    "NotFoundError",
    "AlreadyExistsError",
    "UnavailableError",
    "RegistryTimeoutError",
    "LimitExceededError",
    "ViewChange",
    "ViewChanges",
]
