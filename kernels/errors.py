"""The errors the kernels raise. Callers catch :class:`KernelError`.

Bad arguments (wrong shape, dtype, a negative window) raise :class:`ValueError` naming the
argument; :class:`KernelError` is for what goes wrong beyond one argument.
"""

from __future__ import annotations


class KernelError(Exception):
    """Base class of every error raised by :mod:`kernels` other than argument checks."""


class BackendUnavailableError(KernelError):
    """The backend asked for (``prefer="cuda"``) has no usable device or library."""


class MixedBackendError(KernelError, ValueError):
    """Arrays of one call live on different backends (host NumPy and device CuPy)."""


class KeyOverflowError(KernelError, ValueError):
    """A composite sort key (entity, time) would not fit in int64."""
