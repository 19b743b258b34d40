"""Drive one answer for an async HTTP handler: the pipeline runs in its own thread, the handler awaits
its events, and whoever ends first (the answer, the total deadline, the client leaving) ends the other.

Why a thread per answer and not Starlette's thread pool: a blocked `next()` (a queued request, a slow
model) would otherwise pin one of the pool's 40 threads that every sync route shares; here the number
of threads is bounded by the gate's admission (slots + waiting line per lane).
Cancelling sets a flag the gate, the worker and the backend look at: the backend stops (a local model
within one prompt batch or token, an HTTP backend at once), the worker closes the pipeline's stream and
releases the slot.
Not covered: what the events mean (ui.api) and admission (ui.gate).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any

from ui.gate import Cancelled, GenerationGate, GenerationTimeout, Ticket, gated_stream

_END: Any = object()
Receive = Callable[[], Awaitable[Any]]


class ClientGone(Exception):
    """The HTTP client disconnected; there is nobody left to answer."""


async def wait_for_disconnect(receive: Receive) -> None:
    """Return when the client disconnects. Call only after the request body has been read."""
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return


class Run:
    """One answer in a worker thread. `async for ev in run.events(): ...`; `run.cancel()` from anywhere.

    `make_events(cancelled)` starts the pipeline's stream with the run's cancel flag, which is set when
    the client leaves or the deadline passes, so the backend stops even while it has no event to yield.

    Example: run = Run(lambda c: pipeline.stream(q, cancelled=c), gate, ticket, timeout_s=120)
    """

    def __init__(
        self,
        make_events: Callable[[threading.Event], Iterator[Any]],
        gate: GenerationGate,
        ticket: Ticket,
        timeout_s: float,
    ) -> None:
        self._make_events = make_events
        self._gate, self._ticket = gate, ticket
        self.deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
        self.cancelled = threading.Event()
        self.finished = threading.Event()  # set when the worker has closed the stream and freed the slot
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        # A response that never started (the client left before the first byte) never iterates
        # `events()`: its place in the queue is given back when the run is garbage collected.
        weakref.finalize(self, ticket.release)

    def cancel(self) -> None:
        self.cancelled.set()

    def _put(self, item: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is gone at shutdown: nobody is listening
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _work(self) -> None:
        try:
            stream: Generator[Any, None, None] = gated_stream(
                self._gate,
                self._make_events(self.cancelled),
                ticket=self._ticket,
                deadline=self.deadline,
                cancelled=self.cancelled,
            )
            try:
                for event in stream:
                    if self.cancelled.is_set():
                        break
                    if self.deadline is not None and time.monotonic() > self.deadline:
                        raise GenerationTimeout()
                    self._put(event)
            finally:
                stream.close()  # closes the pipeline's stream (stops the model), then frees the slot
        except Cancelled:
            pass
        except BaseException as err:  # handed to the async side, which turns it into an HTTP error
            self._put(err)
        finally:
            self._ticket.release()  # idempotent; covers a failure before the stream started
            self.finished.set()
            self._put(_END)

    async def events(self, receive: Receive | None = None) -> AsyncIterator[Any]:
        """The pipeline's events. Raises ClientGone when `receive` reports a disconnect, GenerationTimeout
        past the deadline, or whatever the pipeline raised."""
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._work, name="rag-answer", daemon=True).start()
        watcher = asyncio.ensure_future(wait_for_disconnect(receive)) if receive is not None else None
        try:
            while True:
                getter = asyncio.ensure_future(self._queue.get())
                waits: set[asyncio.Future[Any]] = {getter} | ({watcher} if watcher else set())
                left = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
                done, _ = await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    if watcher is not None and watcher in done:
                        raise ClientGone()
                    raise GenerationTimeout()
                item = getter.result()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # Any exit (answer done, deadline, client gone, the response task cancelled) stops the work.
            self.cancel()
            if watcher is not None:
                watcher.cancel()
