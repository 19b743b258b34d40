"""The HTTP API and server middleware over a scripted pipeline, in-process (FastAPI TestClient)."""

from __future__ import annotations

import base64
import json
import threading

import pytest
from fakes_ui import FakePipeline
from fastapi.testclient import TestClient

from rag.config import Config
from ui.feedback import read_feedback
from ui.server import build_server, frame_ancestors, parse_origins

pytestmark = pytest.mark.unit


def client(tmp_path, env=None, **cfg) -> TestClient:
    config = Config.from_env({}, max_question_chars=200, feedback_path=str(tmp_path / "fb.jsonl"), **cfg)
    return TestClient(build_server(FakePipeline(config=config), env=env or {}))


def sse_events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_health(tmp_path):
    with client(tmp_path) as c:
        r = c.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["documents"] == 2 and body["generations"]["limit"] == 1


def test_ask_returns_cli_json_shape(tmp_path):
    with client(tmp_path, client_backends="extractive") as c:
        r = c.post(
            "/api/ask",
            json={
                "question": "How much?",
                "history": [{"role": "user", "content": "hi"}],
                "k": 1,
                "backend": "extractive",
            },
        )
    assert r.status_code == 200
    data = r.json()
    assert set(data) >= {"question", "answer", "refused", "citations", "retrieved", "backend", "timings_ms"}
    assert data["citations"][0]["quote"].startswith("Microsoft invested")
    assert data["backend"] == "extractive" and len(data["retrieved"]) == 1


def test_stream_sse_events_in_order(tmp_path):
    with client(tmp_path) as c:
        r = c.post("/api/ask/stream", json={"question": "How much?"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    kinds = [k for k, _ in sse_events(r.text)]
    assert kinds[0] == "sources" and kinds[-1] == "final" and set(kinds[1:-1]) == {"token"}
    assert sse_events(r.text)[-1][1]["answer"] == "Microsoft invested $650 million [1]."


def test_stream_ndjson(tmp_path):
    with client(tmp_path) as c:
        r = c.post("/api/ask/stream?format=ndjson", json={"question": "How much?"})
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert rows[0]["event"] == "sources" and rows[-1]["event"] == "final"


def test_stream_error_event_is_friendly(tmp_path):
    with client(tmp_path) as c:
        r = c.post("/api/ask/stream", json={"question": "boom"})
    kind, data = sse_events(r.text)[-1]
    assert kind == "error" and "secret" not in data["detail"]


@pytest.mark.parametrize(
    "question, status, kind",
    [("x" * 201, 413, "QuestionTooLong"), ("  ", 400, "QueryError"), ("backend-down", 503, "BackendError")],
)
def test_ask_errors(tmp_path, question, status, kind):
    with client(tmp_path) as c:
        r = c.post("/api/ask", json={"question": question})
        s = c.post("/api/ask/stream", json={"question": question})
    assert r.status_code == status and r.json()["error"] == kind
    if status != 503:  # a refused question is refused before streaming starts
        assert s.status_code == status
    if status == 413:
        assert "limit is 200" in r.json()["detail"]


def test_unexpected_error_is_500_without_details(tmp_path):
    with client(tmp_path) as c:
        r = c.post("/api/ask", json={"question": "boom"})
    assert r.status_code == 500 and "secret" not in r.text


def test_search(tmp_path):
    with client(tmp_path) as c:
        r = c.post("/api/search", json={"query": "cloud", "k": 1})
    assert r.status_code == 200 and r.json()["results"][0]["rank"] == 1


def test_feedback(tmp_path):
    with client(tmp_path) as c:
        r = c.post("/api/feedback", json={"vote": "down", "question": "q", "answer": "a"})
        bad = c.post("/api/feedback", json={"vote": "meh"})
    assert r.status_code == 200 and bad.status_code == 422
    assert read_feedback(tmp_path / "fb.jsonl")[0]["vote"] == "down"


def test_openapi_lists_routes(tmp_path):
    with client(tmp_path) as c:
        paths = c.get("/openapi.json").json()["paths"]
    assert {"/api/ask", "/api/ask/stream", "/api/search", "/api/health", "/api/feedback"} <= set(paths)


def test_token_auth(tmp_path):
    with client(tmp_path, env={"RAG_AUTH_TOKEN": "s3cret"}) as c:
        assert c.post("/api/ask", json={"question": "q"}).status_code == 401
        assert c.get("/").status_code == 401
        assert c.get("/api/health").status_code == 200  # probes stay open
        assert c.get("/embed.js").status_code == 200
        ok = c.post("/api/ask", json={"question": "q"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        page = c.get("/?token=s3cret")
        assert page.status_code == 200 and "rag_token=s3cret" in page.headers["set-cookie"]
        assert c.get("/config").status_code == 200  # the cookie now carries the browser


def test_basic_auth(tmp_path):
    with client(tmp_path, env={"RAG_BASIC_AUTH": "ann:pw"}) as c:
        r = c.get("/")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
        good = base64.b64encode(b"ann:pw").decode()
        bad = base64.b64encode(b"ann:nope").decode()
        assert c.get("/", headers={"Authorization": f"Basic {good}"}).status_code == 200
        assert c.get("/", headers={"Authorization": f"Basic {bad}"}).status_code == 401


def test_cors_and_frame_ancestors(tmp_path):
    with client(tmp_path, allowed_origins="https://wiki.example, https://b.example") as c:
        pre = c.options(
            "/api/ask",
            headers={
                "Origin": "https://wiki.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        evil = c.options(
            "/api/ask", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        page = c.get("/embed/")
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://wiki.example"
    assert evil.status_code == 400
    assert page.headers["content-security-policy"].endswith(
        "; frame-ancestors 'self' https://wiki.example https://b.example"
    )


def test_origin_parsing():
    assert parse_origins("") == [] and parse_origins("*") == ["*"]
    assert parse_origins("https://a/, https://b") == ["https://a", "https://b"]
    assert frame_ancestors(["*"]) is None and frame_ancestors([]) == "frame-ancestors 'self'"


def test_oversized_body_refused(tmp_path):
    with client(tmp_path) as c:
        r = c.post(
            "/api/ask", content=b"{" + b" " * 600_000 + b"}", headers={"content-type": "application/json"}
        )
    assert r.status_code == 413


def test_api_asks_queue_instead_of_failing(tmp_path):
    config = Config.from_env({}, concurrency=2)
    fake = FakePipeline(config=config, token_delay=0.02)
    results: list[int] = []
    with TestClient(build_server(fake, env={})) as c:

        def ask() -> None:
            results.append(c.post("/api/ask", json={"question": "How much?"}).status_code)

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert results == [200] * 8 and fake.max_active <= 2
