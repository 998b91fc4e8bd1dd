"""Exceptions raised by registry_client.

Every error of the Rust core maps to exactly one of these classes (the
mapping lives in python/src/errors.rs). Each class also derives from the
builtin exception a Python programmer would reach for, so both
``except registry_client.NotFoundError`` and ``except LookupError`` work.
"""

from __future__ import annotations

__all__ = [
    "RegistryError",
    "InvalidArgumentError",
    "NotFoundError",
    "AlreadyExistsError",
    "UnavailableError",
    "RegistryTimeoutError",
    "LimitExceededError",
]


class RegistryError(Exception):
    """Base class of every error raised by registry_client."""


class InvalidArgumentError(RegistryError, ValueError):
    """An argument is unusable: empty key or group, n < 1, bad address, weight out of range."""


class NotFoundError(RegistryError, LookupError):
    """The group has no member to answer with, or the thing asked for does not exist."""


class AlreadyExistsError(RegistryError):
    """The id or resource is already taken."""


class UnavailableError(RegistryError, ConnectionError):
    """No registry could be reached, or the client/view/registration is closed."""


class RegistryTimeoutError(RegistryError, TimeoutError):
    """A call did not finish within its deadline (also a builtin TimeoutError)."""


class LimitExceededError(RegistryError):
    """A size, count or rate limit was exceeded."""
