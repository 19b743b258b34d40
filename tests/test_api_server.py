"""The real server on loopback: real index over seeds/, real pipeline (`extractive` backend for speed, one
`local` ask), real uvicorn, real HTTP. Health, ask, stream, search, auth, limits, headers, queueing,
and Gradio's own API through `gradio_client`.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from fakes_ui import ServerThread

pytestmark = pytest.mark.integration
QUESTION = "How much did Microsoft put into Inflection?"


@pytest.fixture(scope="module")
def pipeline(real_config):
    from rag.pipeline import build_pipeline

    # `local` offered too, for the one slow local ask; any other backend name is refused.
    return build_pipeline(real_config.replace(backend="extractive", client_backends="local"))


@pytest.fixture(scope="module")
def server(pipeline):
    from ui.server import build_server

    with ServerThread(build_server(pipeline, env={})) as url:
        yield url


@pytest.fixture(scope="module")
def guarded_server(pipeline):
    """Same pipeline behind a token, embeddable only from one wiki."""
    from ui.server import build_server

    cfg = pipeline.config.replace(allowed_origins="https://wiki.example")
    guarded = type(pipeline)(cfg, pipeline.retriever, {"extractive": pipeline.generator("extractive")})
    with ServerThread(build_server(guarded, env={"RAG_AUTH_TOKEN": "t0ken"})) as url:
        yield url


def test_health(server):
    body = httpx.get(server + "/api/health").json()
    assert body["status"] == "ok" and body["index_loaded"] is True
    assert body["documents"] == 5 and body["chunks"] > 5 and "model_ready" in body


def test_ask_cites_the_seed_article(server, pipeline):
    r = httpx.post(server + "/api/ask", json={"question": QUESTION}, timeout=60)
    assert r.status_code == 200
    data = r.json()
    assert not data["refused"] and "650" in data["answer"] and data["citations"]
    c = data["citations"][0]
    doc = pipeline.document(c["source"])
    assert doc is not None and doc.text[c["start"] : c["end"]].strip() == c["quote"].strip()


def test_stream_sources_first_then_tokens_then_final(server):
    events, t0, first = [], time.perf_counter(), None
    with httpx.stream("POST", server + "/api/ask/stream", json={"question": QUESTION}, timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                if first is None:
                    first = time.perf_counter() - t0
                events.append((kind, json.loads(line[6:])))
    kinds = [k for k, _ in events]
    assert kinds[0] == "sources" and kinds[-1] == "final" and "token" in kinds
    assert len(events[0][1]["retrieved"]) > 0 and first < 5
    assert events[-1][1]["answer"]


def test_search(server):
    r = httpx.post(server + "/api/search", json={"query": "exclusive cloud rights until 2032", "k": 3})
    results = r.json()["results"]
    assert r.status_code == 200 and len(results) == 3 and results[0]["text"]


def test_over_long_question_refused_clearly(server, pipeline):
    r = httpx.post(server + "/api/ask", json={"question": "x" * (pipeline.config.max_question_chars + 1)})
    assert r.status_code == 413 and "limit is" in r.json()["detail"]


def test_unknown_backend_is_a_clear_400(server):
    r = httpx.post(server + "/api/ask", json={"question": QUESTION, "backend": "nope"}, timeout=30)
    assert r.status_code == 400 and "extractive" in r.json()["detail"]


def test_auth_rejected_and_accepted(guarded_server):
    assert httpx.post(guarded_server + "/api/ask", json={"question": QUESTION}).status_code == 401
    assert httpx.get(guarded_server + "/").status_code == 401
    ok = httpx.post(
        guarded_server + "/api/ask",
        json={"question": QUESTION},
        headers={"Authorization": "Bearer t0ken"},
        timeout=60,
    )
    assert ok.status_code == 200
    assert httpx.get(guarded_server + "/embed/?token=t0ken").status_code == 200


def test_cors_and_frame_ancestors(guarded_server):
    pre = httpx.options(
        guarded_server + "/api/ask",
        headers={
            "Origin": "https://wiki.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://wiki.example"
    other = httpx.options(
        guarded_server + "/api/ask",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in other.headers
    page = httpx.get(guarded_server + "/embed/?token=t0ken")
    assert page.headers["content-security-policy"].endswith("; frame-ancestors 'self' https://wiki.example")


def test_eight_concurrent_asks_all_answered(server):
    results: list[tuple[int, float]] = []

    def one() -> None:
        t0 = time.perf_counter()
        r = httpx.post(server + "/api/ask", json={"question": QUESTION}, timeout=120)
        results.append((r.status_code, time.perf_counter() - t0))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert sorted(s for s, _ in results) == [200] * 8


def test_gradio_client_against_running_chat(server):
    from gradio_client import Client

    history, sources = Client(server + "/", verbose=False).predict(QUESTION, [], api_name="/chat")
    text = json.dumps(history[-1]["content"])
    assert "650" in text and "rag-src-m-" in text and "<mark>" in sources


@pytest.mark.slow
def test_one_local_backend_ask(server):
    r = httpx.post(
        server + "/api/ask", json={"question": "Who leads Microsoft AI?", "backend": "local"}, timeout=300
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["backend"] == "local" and data["answer"] and data["retrieved"]
