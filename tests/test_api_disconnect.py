"""Work is released when the client leaves: a real uvicorn server on loopback, abandoned streams and asks,
the total deadline and the bounded queue.

The unit tests drive a scripted slow pipeline (tests/fakes_ui.py) behind the real server and real HTTP;
the slow test does the same with the real local model and checks it stops generating.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import httpx
import pytest
from fakes_ui import FakePipeline, ServerThread

from rag.config import Config
from ui.server import build_server

QUESTION = "How much did Microsoft put into Inflection?"


def _serve(token_delay: float, **cfg: object) -> tuple[FakePipeline, ServerThread]:
    config = Config.from_env({}, max_question_chars=200, rate_limit="", **cfg)
    fake = FakePipeline(config=config, token_delay=token_delay)
    return fake, ServerThread(build_server(fake, env={}))


def _idle(url: str, fake: FakePipeline | None = None, within_s: float = 15.0) -> dict:
    """Poll health until no slot is held and nobody waits (generous bound: a loaded CI machine)."""
    end = time.monotonic() + within_s
    while True:
        gen = httpx.get(url + "/api/health").json()["generations"]
        if gen["active"] == 0 and gen["waiting"] == 0 and (fake is None or fake.active == 0):
            return gen
        if time.monotonic() > end:
            raise AssertionError(f"slots still held: {gen}, pipeline streams open: {fake and fake.active}")
        time.sleep(0.05)


def _post(sock: socket.socket, path: str, body: bytes) -> None:
    """A JSON POST written by hand, so the test decides when the connection closes."""
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    sock.sendall(head.encode() + body)


def _abandon_stream(url: str, body: dict, until: str) -> str:
    """Open a stream, read until the first `until` event (or `sources` when queued), then hang up."""
    with httpx.stream("POST", url + "/api/ask/stream", json=body, timeout=30) as r:
        if r.status_code != 200:
            return str(r.status_code)
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
                if kind in (until, "sources"):
                    return kind
    return "ended"


@pytest.mark.unit
def test_twenty_abandoned_streams_free_every_slot_and_ask_still_answers():
    fake, server = _serve(token_delay=1.0, concurrency=1, queue_max=32)
    with server as url:
        seen: list[str] = []
        threads = [
            threading.Thread(
                target=lambda: seen.append(_abandon_stream(url, {"question": QUESTION}, "token"))
            )
            for _ in range(20)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(seen) == 20 and set(seen) <= {"sources", "token"}
        _idle(url, fake)
        fake.token_delay = 0.01
        r = httpx.post(url + "/api/ask", json={"question": QUESTION}, timeout=30)
        assert r.status_code == 200 and "650" in r.json()["answer"]
    assert len(fake.calls) <= 21  # nobody's abandoned answer ran to the end behind the scenes


@pytest.mark.unit
def test_abandoned_plain_ask_is_cancelled():
    fake, server = _serve(token_delay=2.0, concurrency=1)
    with server as url:
        host, port = url.removeprefix("http://").split(":")
        body = json.dumps({"question": QUESTION}).encode()
        with socket.create_connection((host, int(port))) as s:
            _post(s, "/api/ask", body)
            end = time.monotonic() + 15
            while fake.active == 0 and time.monotonic() < end:  # the answer is being written
                time.sleep(0.02)
            assert fake.active == 1
        _idle(url, fake)  # well before the 8 s the answer would take


@pytest.mark.unit
def test_full_queue_answers_503_with_retry_after():
    fake, server = _serve(token_delay=1.0, concurrency=1, queue_max=1)
    with server as url:
        statuses: list[int] = []
        lock = threading.Lock()

        def ask() -> None:
            r = httpx.post(url + "/api/ask", json={"question": QUESTION}, timeout=60)
            with lock:
                statuses.append(r.status_code)
                if r.status_code == 503:
                    assert int(r.headers["retry-after"]) >= 1 and r.json()["error"] == "Busy"

        threads = [threading.Thread(target=ask) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert sorted(statuses).count(200) >= 2 and 503 in statuses and set(statuses) <= {200, 503}


@pytest.mark.unit
def test_total_deadline_ends_a_slow_answer():
    fake, server = _serve(token_delay=3.0, concurrency=1, generation_timeout=1.0)
    with server as url:
        r = httpx.post(url + "/api/ask", json={"question": QUESTION}, timeout=30)
        assert r.status_code == 504 and r.json()["error"] == "Timeout"
        with httpx.stream("POST", url + "/api/ask/stream", json={"question": QUESTION}, timeout=30) as s:
            text = s.read().decode()
        assert "event: error" in text and "RAG_GENERATION_TIMEOUT" in text
        _idle(url, fake)


@pytest.mark.integration
@pytest.mark.slow
def test_local_model_stops_when_the_stream_is_abandoned(real_config):
    """The real local model: 20 abandoned streams, then the slot is free and /api/ask answers."""
    from rag.pipeline import build_pipeline

    cfg = real_config.replace(backend="local", queue_max=32, rate_limit="")
    pipeline = build_pipeline(cfg)
    pipeline.warm_up("local")
    with ServerThread(build_server(pipeline, env={})) as url:
        threads = [
            threading.Thread(
                target=_abandon_stream, args=(url, {"question": "Who leads Microsoft AI?"}, "token")
            )
            for _ in range(20)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        _idle(url, within_s=30)
        r = httpx.post(url + "/api/ask", json={"question": "Who leads Microsoft AI?"}, timeout=300)
        assert r.status_code == 200 and r.json()["answer"]


def _llama_slots(address: str) -> list[dict]:
    return httpx.get(address.rstrip("/") + "/slots", timeout=10).json()


@pytest.mark.integration
@pytest.mark.slow
def test_local_model_abandoned_while_reading_its_prompt_frees_the_slot(real_config):
    """A client that leaves before the first token (the model still processing the prompt's passages):
    our slot and llama.cpp's are free within a few prompt batches (RAG_LLM_BATCH), not at the first token."""
    from rag.pipeline import build_pipeline

    pipeline = build_pipeline(real_config.replace(backend="local", rate_limit=""))
    pipeline.warm_up("local")  # caches the fixed instructions; the passages are still to be read
    llama = pipeline.generator("local").address  # type: ignore[attr-defined]
    before = max(s.get("id_task", -1) for s in _llama_slots(llama))
    # Unique text in the question: llama.cpp cannot have any of it cached (an earlier test may have asked
    # about the same passages), so several batches of prompt are left to read after it.
    question = QUESTION + "".join(f" Ref {uuid.uuid4().hex}." for _ in range(10))
    with ServerThread(build_server(pipeline, env={})) as url:
        host, port = url.removeprefix("http://").split(":")
        body = json.dumps({"question": question}).encode()
        # A raw socket: leaving an httpx stream's line iterator early already closes the connection.
        with socket.create_connection((host, int(port))) as client:
            _post(client, "/api/ask/stream", body)
            first: int | None = None  # tokens in llama.cpp's slot when our task was first seen
            ours: list[dict] = []
            end = time.monotonic() + 180
            while time.monotonic() < end:  # until one batch of our prompt has been processed
                slots = _llama_slots(llama)
                ours = [s for s in slots if s.get("id_task", -1) > before and s["is_processing"]]
                if ours and first is None:
                    first = ours[0]["n_prompt_tokens"]
                elif ours and ours[0]["n_prompt_tokens"] > first:
                    break
                time.sleep(0.1)
            assert ours and ours[0]["next_token"][0]["n_decoded"] == 0, "no prompt batch seen before a token"
        closed = time.monotonic()
        _idle(url, within_s=30)  # generous: a loaded 2-core machine; one batch takes ~1 s when idle
        slots = _llama_slots(llama)
        while any(s["is_processing"] for s in slots):  # llama.cpp finishes the batch in flight
            assert time.monotonic() - closed < 30, slots
            time.sleep(0.05)
            slots = _llama_slots(llama)
        freed_s = time.monotonic() - closed
    latest = max(slots, key=lambda s: s.get("id_task", -1))
    assert latest["next_token"][0]["n_decoded"] == 0  # stopped inside the prompt: no token was generated
    print(f"slot free {freed_s:.2f} s after the client left, during the prompt")
