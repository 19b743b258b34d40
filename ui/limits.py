"""Per-client rate limits, from the `limits` library (moving windows in memory, entries expire on their own).

Why `limits` and not a hand-written counter: its moving-window strategy is exact at window edges and its
memory storage expires keys, so a flood of distinct client addresses does not grow memory forever.
Not covered: limits shared across several server processes (use one process, or a proxy's limiter).
"""

from __future__ import annotations

import math
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from index.errors import ConfigError

OFF = ("", "off", "none", "0")  # an empty RAG_* variable means "default", so "off" switches a limit off


class RateLimit:
    """`RateLimit("60/minute").hit(client)` -> 0 when allowed, else seconds to wait. "off" = no limit."""

    def __init__(self, spec: str) -> None:
        self.spec = (spec or "").strip()
        if self.spec.lower() in OFF:
            self.spec = ""
        try:
            self._item = parse(self.spec) if self.spec else None
        except ValueError as err:
            raise ConfigError(
                f"Rate limit {spec!r} is not valid; write it like '60/minute' or '5/second', or '' for none."
            ) from err
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def _wait(self, key: str) -> int:
        assert self._item is not None
        reset = self._limiter.get_window_stats(self._item, key).reset_time
        return max(1, math.ceil(reset - time.time()))

    def hit(self, key: str) -> int:
        """Count one request of `key`; 0 when it is within the limit, else the seconds until it would be."""
        if self._item is None or self._limiter.hit(self._item, key):
            return 0
        return self._wait(key)

    def retry_after(self, key: str) -> int:
        """0 when `key` has budget left, else the seconds to wait; counts nothing."""
        if self._item is None or self._limiter.test(self._item, key):
            return 0
        return self._wait(key)
