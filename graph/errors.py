"""The errors the graph layer raises. Callers catch :class:`GraphError`."""

from __future__ import annotations


class GraphError(Exception):
    """Base class of every error raised by :mod:`graph`."""


class SchemaError(GraphError, ValueError):
    """A label, relationship type or property is not in the schema, or a row breaks it."""


class StoreUnavailableError(GraphError):
    """The store cannot be reached (server down, timeout, file locked by another process)."""


class TransactionLimitError(StoreUnavailableError):
    """A transaction ran past the store's time or memory limit (or waited that long for a lock)
    and was rolled back; the same work in smaller transactions may pass."""


class StoreError(GraphError):
    """The store answered with an error that retrying will not fix."""


class BufferPoolFullError(StoreError):
    """The embedded store's page cache (LadybugDB's buffer pool) is full and nothing in it
    could be freed; the same work needs a larger pool, not a retry.

    Args:
        message (str): what failed.
        pool_bytes (int): the pool's size as configured; ``0``: LadybugDB's default (80 % of
            the machine's memory).
    """

    def __init__(self, message: str, pool_bytes: int) -> None:
        super().__init__(message)
        self.pool_bytes = pool_bytes


class LoadError(GraphError):
    """A world directory cannot be loaded (missing table, unreadable checkpoint)."""
