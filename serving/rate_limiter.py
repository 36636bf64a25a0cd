"""`RateLimiter`: a token bucket per API key, in this process.

Each replica limits on its own (no shared counter to wait on in the request path), so a fleet
of N replicas behind a balancer admits up to N times the rate; size the per-key rate for one
replica's share.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Token buckets keyed by API key id.

    Args:
        rate_per_s (float): tokens added per second unless a key sets its own.
        burst (int): bucket size: requests a key may send at once.
        clock (Callable[[], float], optional): monotonic seconds. (default: ``time.monotonic``)
    """

    def __init__(self, rate_per_s: float, burst: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"need rate_per_s > 0 and burst >= 1, got {rate_per_s}, {burst}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RateLimiter(rate_per_s={self.rate_per_s}, burst={self.burst})"

    def acquire(self, key: str, rate_per_s: float | None = None) -> float:
        """Take one token for ``key``.

        Returns:
            float: ``0.0`` when allowed, else the seconds until a token is available.
        """
        rate = rate_per_s or self.rate_per_s
        burst = float(max(self.burst, 1)) if rate_per_s is None else max(1.0, rate_per_s * 2)
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate
