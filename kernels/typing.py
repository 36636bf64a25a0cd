"""Names for the shapes that recur across the kernels."""

from __future__ import annotations

from typing import Any, Final, Literal, TypeAlias

import numpy as np

Array: TypeAlias = Any
"""A NumPy or CuPy ndarray; the kernels accept either and return the same kind."""

BackendName: TypeAlias = Literal["auto", "cpu", "cuda"]
"""What a caller may ask :func:`kernels.select_backend` for."""

NEVER: Final[int] = int(np.iinfo(np.int64).max)
"""The label-visible-from time of an entity that has no such label (never visible)."""

HOUR: Final[int] = 3600
DAY: Final[int] = 86_400
WEEK: Final[int] = 7 * DAY
DEFAULT_WINDOWS: Final[tuple[int, ...]] = (HOUR, DAY, WEEK)
"""Velocity windows in seconds: 1 h, 24 h, 7 d."""
