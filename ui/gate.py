"""A counting gate that limits concurrent generations across the chat page and the HTTP API.

Callers beyond `Config.concurrency` wait (they queue, they do not fail). `stats()` feeds /api/health.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
_END: Any = object()


class GenerationGate:
    """`with gate.slot(): ...` runs at most `limit` bodies at once; the rest block in arrival order-ish."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, int(limit))
        self._sem = threading.BoundedSemaphore(self.limit)
        self._lock = threading.Lock()
        self.active = 0
        self.waiting = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            self.waiting += 1
        self._sem.acquire()
        with self._lock:
            self.waiting -= 1
            self.active += 1
        try:
            yield
        finally:
            with self._lock:
                self.active -= 1
            self._sem.release()

    def busy(self) -> bool:
        """True when a new caller would have to wait."""
        with self._lock:
            return self.active >= self.limit

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"limit": self.limit, "active": self.active, "waiting": self.waiting}


def gated_stream(gate: GenerationGate, events: Iterable[T], ungated_first: bool = True) -> Iterator[T]:
    """Yield `events`, holding a gate slot while generating.

    With `ungated_first` the first event (the pipeline's `Sources`, i.e. retrieval only) is produced
    before taking a slot, so sources show at once even while every slot is busy. Closing the iterator
    (a client that went away) releases the slot.
    """
    it = iter(events)
    if ungated_first:
        first = next(it, _END)
        if first is _END:
            return
        yield first  # type: ignore[misc]
    with gate.slot():
        yield from it
