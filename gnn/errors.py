"""The errors the model layer raises. Callers catch :class:`ModelError`."""

from __future__ import annotations


class ModelError(Exception):
    """Base class of every error raised by :mod:`gnn`."""


class GraphDataError(ModelError, ValueError):
    """Input graph data (files, arrays, splits) is malformed or inconsistent."""


class WorkDirMismatch(ModelError, ValueError):
    """A work directory holds a world or results made with other parameters than asked."""
