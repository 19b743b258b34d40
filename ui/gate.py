"""Admission and concurrency for answers, shared by the chat page and the HTTP API.

Work is sorted into lanes by what it needs:
- `model`: the in-process local model; `Config.concurrency` slots (a 2-core machine runs one well).
- `cpu`: the extractive backend (retrieval + sentence scoring only); `Config.cpu_slots` at once.
- `remote`: OpenAI-compatible servers; our gate does not serialise them, `Config.remote_slots` only
  bounds the threads we park on them.
Each lane holds at most `Config.queue_max` callers waiting beyond its slots; one more gets `QueueFull`
(HTTP 503 with Retry-After) at once instead of queueing forever. Waiting respects a deadline and a
cancel flag, so a client that went away or ran out of time stops waiting and never takes a slot.
`stats()` feeds /api/health, which reports `stuck` when a slot has been held past its deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from index.errors import BackendError

T = TypeVar("T")
_END: Any = object()
LANE_OF_BACKEND = {"local": "model", "extractive": "cpu", "openai": "remote"}
POLL_S = 0.05  # how often a waiter looks at its cancel flag; bounds how long a gone client stays queued


class QueueFull(BackendError):
    """Every slot is busy and the waiting line is full; the client should retry later."""

    def __init__(self, lane: str, retry_after: int) -> None:
        super().__init__(
            f"The server is busy ({lane} queue full); retry in {retry_after} s. Operators: raise "
            "RAG_QUEUE_MAX or the lane's slots (RAG_CONCURRENCY, RAG_CPU_SLOTS, RAG_REMOTE_SLOTS)."
        )
        self.lane, self.retry_after = lane, retry_after


TIMED_OUT = (
    "The answer took longer than the total deadline (RAG_GENERATION_TIMEOUT); "
    "ask a narrower question or raise the limit."
)


class GenerationTimeout(BackendError):
    """The answer did not complete within the total deadline (RAG_GENERATION_TIMEOUT)."""

    def __init__(self, message: str = TIMED_OUT) -> None:
        super().__init__(message)


class Cancelled(Exception):
    """The caller went away while waiting; nothing to report to anyone."""


class _Lane:
    def __init__(self, name: str, limit: int, max_waiting: int) -> None:
        self.name, self.limit, self.max_waiting = name, max(1, int(limit)), max(0, int(max_waiting))
        self.sem = threading.Semaphore(self.limit)
        self.active = 0
        self.waiting = 0
        self.held_since: dict[int, float] = {}  # ticket id -> monotonic time the slot was taken


class Ticket:
    """A place in one lane: taken at admission (`GenerationGate.ticket`), then `acquire()`d, then released.

    `release()` is idempotent and safe from any thread, so every exit path may call it.
    """

    def __init__(self, gate: GenerationGate, lane: _Lane) -> None:
        self._gate, self.lane = gate, lane
        self._state = "waiting"  # waiting -> active -> done
        self._lock = threading.RLock()

    def acquire(self, deadline: float | None = None, cancelled: threading.Event | None = None) -> None:
        """Wait for a slot; GenerationTimeout past `deadline` (monotonic), Cancelled when `cancelled`."""
        while True:
            if cancelled is not None and cancelled.is_set():
                self.release()
                raise Cancelled()
            wait = POLL_S
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.release()
                    raise GenerationTimeout(
                        "Waited too long for a free generation slot (RAG_GENERATION_TIMEOUT); retry later."
                    )
                wait = min(wait, left)
            if self.lane.sem.acquire(timeout=wait):
                break
        with self._gate._lock, self._lock:
            if self._state != "waiting":  # released meanwhile from another thread: give the slot back
                self.lane.sem.release()
                raise Cancelled()
            self._state = "active"
            self.lane.waiting -= 1
            self.lane.active += 1
            self.lane.held_since[id(self)] = time.monotonic()

    def release(self) -> None:
        with self._gate._lock, self._lock:
            if self._state == "waiting":
                self.lane.waiting -= 1
            elif self._state == "active":
                self.lane.active -= 1
                self.lane.held_since.pop(id(self), None)
                self.lane.sem.release()
            self._state = "done"


class GenerationGate:
    """Lanes of slots plus bounded waiting lines. `GenerationGate(1)` = one local-model slot, as before.

    Example: gate = GenerationGate.from_config(cfg); t = gate.ticket("extractive"); t.acquire(); t.release()
    """

    def __init__(
        self,
        limit: int = 1,
        *,
        cpu_limit: int = 8,
        remote_limit: int = 32,
        max_waiting: int = 16,
        default_backend: str = "local",
        stuck_after_s: float = 0.0,
    ) -> None:
        self.limit = max(1, int(limit))
        self.default_backend = default_backend
        self.stuck_after_s = stuck_after_s
        # Re-entrant: an abandoned run's ticket is released by a weakref finalizer (ui/runs.py), which the
        # garbage collector may run on any thread, also one that holds this lock inside `acquire`. With a
        # plain Lock that thread deadlocked on itself and every later answer waited forever (seen once,
        # as a test process that would not exit).
        self._lock = threading.RLock()
        self.lanes = {
            "model": _Lane("model", self.limit, max_waiting),
            "cpu": _Lane("cpu", cpu_limit, max_waiting),
            "remote": _Lane("remote", remote_limit, max_waiting),
        }

    @classmethod
    def from_config(cls, cfg: Any) -> GenerationGate:
        timeout = float(getattr(cfg, "generation_timeout", 120.0))
        return cls(
            getattr(cfg, "concurrency", 1),
            cpu_limit=getattr(cfg, "cpu_slots", 8),
            remote_limit=getattr(cfg, "remote_slots", 32),
            max_waiting=getattr(cfg, "queue_max", 16),
            default_backend=getattr(cfg, "backend", "local"),
            stuck_after_s=timeout + 5.0 if timeout > 0 else 0.0,
        )

    def lane_for(self, backend: str | None) -> _Lane:
        # Unknown names go to the strictest lane; the pipeline rejects them before any generation anyway.
        return self.lanes[LANE_OF_BACKEND.get(backend or self.default_backend, "model")]

    def ticket(self, backend: str | None = None) -> Ticket:
        """A waiting place in `backend`'s lane, or QueueFull when its line is full."""
        lane = self.lane_for(backend)
        with self._lock:
            free = lane.limit - lane.active
            if lane.waiting >= lane.max_waiting + max(0, free):
                raise QueueFull(lane.name, retry_after=max(1, min(30, 2 * (lane.waiting // lane.limit + 1))))
            lane.waiting += 1
        return Ticket(self, lane)

    @contextmanager
    def slot(self, backend: str | None = None) -> Iterator[None]:
        ticket = self.ticket(backend)
        try:
            ticket.acquire()
            yield
        finally:
            ticket.release()

    @property
    def active(self) -> int:
        with self._lock:
            return sum(lane.active for lane in self.lanes.values())

    @property
    def waiting(self) -> int:
        with self._lock:
            return sum(lane.waiting for lane in self.lanes.values())

    def busy(self, backend: str | None = None) -> bool:
        """True when a new caller for `backend` would have to wait."""
        lane = self.lane_for(backend)
        with self._lock:
            return lane.active >= lane.limit

    def stuck(self) -> bool:
        """True when some slot has been held longer than the total deadline allows (a leak or a hang)."""
        if self.stuck_after_s <= 0:
            return False
        now = time.monotonic()
        with self._lock:
            return any(
                now - t > self.stuck_after_s for lane in self.lanes.values() for t in lane.held_since.values()
            )

    def stats(self) -> dict[str, Any]:
        with self._lock:
            lanes = {
                n: {"limit": lane.limit, "active": lane.active, "waiting": lane.waiting}
                for n, lane in self.lanes.items()
            }
        return {
            "limit": self.limit,
            "active": sum(v["active"] for v in lanes.values()),
            "waiting": sum(v["waiting"] for v in lanes.values()),
            "lanes": lanes,
        }


def gated_stream(
    gate: GenerationGate,
    events: Iterable[T],
    ungated_first: bool = True,
    *,
    backend: str | None = None,
    ticket: Ticket | None = None,
    deadline: float | None = None,
    cancelled: threading.Event | None = None,
) -> Generator[T, None, None]:
    """Yield `events`, holding a slot of `backend`'s lane while generating.

    With `ungated_first` the first event (the pipeline's `Sources`, i.e. retrieval only) is produced
    before taking a slot, so sources show at once even while every slot is busy. Closing this iterator
    (a client that went away) closes `events` (which stops the model) and releases the slot. Raises
    QueueFull when the lane's line is full (unless a `ticket` was taken earlier), GenerationTimeout past
    `deadline`, Cancelled when `cancelled` is set while waiting.
    """
    ticket = ticket or gate.ticket(backend)
    it = iter(events)
    try:
        if ungated_first:
            first = next(it, _END)
            if first is _END:
                return
            yield first
        ticket.acquire(deadline, cancelled)
        yield from it
    finally:
        close = getattr(it, "close", None)
        try:
            if callable(close):
                close()
        finally:
            ticket.release()
