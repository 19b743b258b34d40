"""Per-client rate limits, from the `limits` library: in memory for one process, or shared by every replica.

Why `limits` and not a hand-written counter: its moving-window strategy is exact at window edges and its
memory storage expires keys, so a flood of distinct client addresses does not grow memory forever.
Replicas (RAG_STORE=postgres) must share one budget, or N replicas would let a client through N times: there
the counters live in the database (`SharedCounters`, kept by `index.pg_store.PgStore`) behind `limits`'
fixed-window strategy. `limits` ships Redis, Memcached and MongoDB storages but none for PostgreSQL, and
the database is the one shared service a deployment of ours already has, so `CounterStorage` adapts it.
Not covered: limits keyed by anything but the client address the server sees (put a proxy's limiter first).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Protocol

from limits import parse
from limits.storage import MemoryStorage, Storage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, RateLimiter

from index.errors import ConfigError

log = logging.getLogger("ui.limits")

OFF = ("", "off", "none", "0")  # an empty RAG_* variable means "default", so "off" switches a limit off


class SharedCounters(Protocol):
    """Fixed-window counters every replica sees (implemented by `index.pg_store.PgStore`)."""

    def count_hit(self, key: str, window_s: float, amount: int = 1) -> tuple[int, float]:
        """Add `amount` to `key`'s counter, starting a new window when the last one ended; returns the
        count and the window's end (epoch seconds)."""
        ...

    def count_get(self, key: str) -> tuple[int, float]:
        """The count and window end of `key`; (0, now) when there is no live window."""
        ...

    def count_clear(self, key: str | None = None) -> int:
        """Forget `key`'s counter (every counter when None); returns how many were removed."""
        ...


class CounterStorage(Storage):
    """`limits` storage over `SharedCounters` (fixed windows only: enough for a per-client budget)."""

    STORAGE_SCHEME = None  # built from a store object, never from a URI

    def __init__(self, counters: SharedCounters) -> None:
        super().__init__()
        self.counters = counters

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return Exception

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self.counters.count_hit(key, float(expiry), amount)[0]

    def get(self, key: str) -> int:
        return self.counters.count_get(key)[0]

    def get_expiry(self, key: str) -> float:
        return self.counters.count_get(key)[1]

    def check(self) -> bool:
        try:
            self.counters.count_get("health")
        except Exception:  # noqa: BLE001 - a health probe answers yes or no
            return False
        return True

    def reset(self) -> int | None:
        return self.counters.count_clear(None)

    def clear(self, key: str) -> None:
        self.counters.count_clear(key)


class RateLimit:
    """`RateLimit("60/minute").hit(client)` -> 0 when allowed, else seconds to wait. "off" = no limit.

    With `counters`, the budget is shared by every process using them. When they fail (the database is
    down), requests are let through and a warning is logged: the answers need the same database and will
    say so with their own error, while a limiter error would turn every request into a 500.
    """

    def __init__(self, spec: str, counters: SharedCounters | None = None, scope: str = "requests") -> None:
        self.spec = (spec or "").strip()
        # Part of every counter's key: two limits with the same spec on shared counters (requests and
        # failed sign-ins, say) must not count into one row.
        self.scope = scope
        if self.spec.lower() in OFF:
            self.spec = ""
        try:
            self._item = parse(self.spec) if self.spec else None
        except ValueError as err:
            raise ConfigError(
                f"Rate limit {spec!r} is not valid; write it like '60/minute' or '5/second', or '' for none."
            ) from err
        self.shared = counters is not None
        self._limiter: RateLimiter = (
            FixedWindowRateLimiter(CounterStorage(counters)) if counters is not None
            else MovingWindowRateLimiter(MemoryStorage())
        )
        self._warned = 0.0

    def _wait(self, key: str) -> int:
        assert self._item is not None
        reset = self._limiter.get_window_stats(self._item, self.scope, key).reset_time
        return max(1, math.ceil(reset - time.time()))

    def hit(self, key: str) -> int:
        """Count one request of `key`; 0 when it is within the limit, else the seconds until it would be."""
        if self._item is None:
            return 0
        item = self._item
        return self._guarded(lambda: 0 if self._limiter.hit(item, self.scope, key) else self._wait(key))

    def retry_after(self, key: str) -> int:
        """0 when `key` has budget left, else the seconds to wait; counts nothing."""
        if self._item is None:
            return 0
        item = self._item
        return self._guarded(lambda: 0 if self._limiter.test(item, self.scope, key) else self._wait(key))

    def _guarded(self, check: Any) -> int:
        try:
            return int(check())
        except Exception as err:  # noqa: BLE001 - fail open, see the class docstring
            if not self.shared:
                raise
            now = time.monotonic()
            if now - self._warned > 60:  # one line a minute, not one per request
                self._warned = now
                log.warning("rate limit not applied: the shared counters failed (%s)", err)
            return 0
