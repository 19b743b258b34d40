"""ui.gate: lanes, bounded waiting lines, cancel and deadline while waiting, idempotent release."""

from __future__ import annotations

import threading
import time

import pytest

from ui.gate import Cancelled, GenerationGate, GenerationTimeout, QueueFull, gated_stream

pytestmark = pytest.mark.unit


def test_lanes_do_not_block_each_other():
    gate = GenerationGate(1, cpu_limit=2, default_backend="local")
    held = gate.ticket("local")
    held.acquire()
    for _ in range(2):  # extractive work goes on while the model slot is taken
        t = gate.ticket("extractive")
        t.acquire(deadline=time.monotonic() + 5)
    assert gate.busy("local") and gate.busy("extractive") and not gate.busy("openai")
    assert gate.stats()["lanes"]["cpu"] == {"limit": 2, "active": 2, "waiting": 0}


def test_waiting_line_is_bounded():
    gate = GenerationGate(1, max_waiting=2)
    first = gate.ticket()
    first.acquire()
    waiting = [gate.ticket(), gate.ticket()]
    with pytest.raises(QueueFull) as err:
        gate.ticket()
    assert err.value.retry_after >= 1 and "RAG_QUEUE_MAX" in str(err.value)
    waiting[0].release()
    gate.ticket()  # a place came free


def test_cancel_and_deadline_while_waiting():
    gate = GenerationGate(1)
    gate.ticket().acquire()
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(Cancelled):
        gate.ticket().acquire(cancelled=cancelled)
    with pytest.raises(GenerationTimeout):
        gate.ticket().acquire(deadline=time.monotonic())
    assert gate.stats()["waiting"] == 0 and gate.stats()["active"] == 1


def test_release_is_idempotent_and_frees_the_slot():
    gate = GenerationGate(1)
    t = gate.ticket()
    t.acquire()
    t.release()
    t.release()
    again = gate.ticket()
    again.acquire(deadline=time.monotonic() + 5)
    assert gate.stats()["active"] == 1


def test_closing_the_stream_closes_the_pipeline_and_frees_the_slot():
    gate = GenerationGate(1)
    closed = []

    def events():
        try:
            yield "sources"
            while True:
                yield "token"
        finally:
            closed.append(True)

    stream = gated_stream(gate, events())
    assert next(stream) == "sources" and next(stream) == "token"
    assert gate.stats()["active"] == 1
    stream.close()
    assert closed == [True] and gate.stats() == {**gate.stats(), "active": 0, "waiting": 0}


def test_stuck_slot_is_reported():
    gate = GenerationGate(1, stuck_after_s=0.001)
    t = gate.ticket()
    t.acquire()
    end = time.monotonic() + 5
    while not gate.stuck() and time.monotonic() < end:
        time.sleep(0.005)
    assert gate.stuck()
    t.release()
    assert not gate.stuck()


def test_a_release_run_by_the_garbage_collector_inside_acquire_does_not_deadlock():
    """ui/runs.py releases an abandoned run's ticket from a weakref finalizer; the collector may run it
    on a thread that is inside `acquire`'s critical section, holding the gate's lock."""
    import gc
    import weakref

    gate = GenerationGate(2, default_backend="local")
    abandoned = gate.ticket("local")
    abandoned.acquire()

    class Run:  # stands in for ui.runs.Run: garbage in a reference cycle, released by its finalizer
        pass

    def new_ticket_while_the_collector_runs() -> None:
        run = Run()
        run.cycle = run  # type: ignore[attr-defined]
        weakref.finalize(run, abandoned.release)
        del run
        ticket = gate.ticket("local")
        with gate._lock, ticket._lock:  # as in Ticket.acquire: the collector strikes here
            gc.collect()
        ticket.acquire(deadline=time.monotonic() + 5)

    worker = threading.Thread(target=new_ticket_while_the_collector_runs, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the finalizer's release deadlocked on the gate's lock"
    assert gate.stats()["lanes"]["model"] == {"limit": 2, "active": 1, "waiting": 0}
