"""Argument checks shared by the kernels: every message names the argument."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from kernels.typing import Array


def as_1d(xp: ModuleType, name: str, a: Any, dtype: Any, *, n: int | None = None) -> Array:
    """``a`` as a 1-D array of ``dtype`` on ``xp``, optionally of length ``n``.

    Integer targets refuse float input (a float timestamp or id is a caller's bug, not
    something to round silently).

    Raises:
        ValueError: naming ``name`` on a wrong rank, length or dtype kind.
    """
    if a is None:
        raise ValueError(f"{name} is required")
    arr = xp.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(arr.shape)}")
    target = np.dtype(dtype)
    if target.kind in "iu" and arr.dtype.kind not in "iub" and arr.size:
        raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")
    if target.kind == "f" and arr.dtype.kind not in "iubf" and arr.size:
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have length {n}, got {arr.shape[0]}")
    return arr.astype(target, copy=False)


def check_index(xp: ModuleType, name: str, a: Array, bound: int | None) -> None:
    """Raise ``ValueError`` unless ``0 <= a < bound`` (``bound=None``: only non-negative)."""
    if a.size == 0:
        return
    lo = int(a.min())
    if lo < 0:
        raise ValueError(f"{name} must be non-negative, got {lo}")
    if bound is not None:
        hi = int(a.max())
        if hi >= bound:
            raise ValueError(f"{name} must be < {bound}, got {hi}")


def check_indptr(xp: ModuleType, indptr: Any, *, nnz: int | None = None) -> Array:
    """A CSR ``indptr`` as int64: starts at 0, never decreases, ends at ``nnz`` if given."""
    ptr = as_1d(xp, "indptr", indptr, np.int64)
    if ptr.shape[0] < 1:
        raise ValueError("indptr must have at least one entry")
    if int(ptr[0]) != 0:
        raise ValueError(f"indptr must start at 0, got {int(ptr[0])}")
    if ptr.shape[0] > 1 and bool((ptr[1:] < ptr[:-1]).any()):
        raise ValueError("indptr must be non-decreasing")
    if nnz is not None and int(ptr[-1]) != nnz:
        raise ValueError(f"indptr must end at {nnz} (the number of values), got {int(ptr[-1])}")
    return ptr


def check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_windows(windows: Any) -> tuple[int, ...]:
    ws = tuple(windows)
    if not ws:
        raise ValueError("windows must not be empty")
    for w in ws:
        check_positive("windows", w)
    return tuple(int(w) for w in ws)
