"""Operators decide, clients don't: backends a client may pick, body limits while reading, bad JSON,
error shapes, rate limits, sign-in guesses, feedback limits, health details, CSP and same-origin default."""

from __future__ import annotations

import base64
import threading

import httpx
import pytest
from fakes_ui import FakePipeline, ServerThread
from fastapi.testclient import TestClient

from index.errors import ConfigError
from rag.config import Config
from ui.cli import trusted_proxies, uvicorn_options
from ui.server import build_server

pytestmark = pytest.mark.unit
Q = {"question": "How much?"}


def config(tmp_path, **cfg) -> Config:
    base = {"max_question_chars": 200, "feedback_path": str(tmp_path / "fb.jsonl"), "rate_limit": ""}
    return Config.from_env({}, **{**base, **cfg})


def client(tmp_path, env=None, **cfg) -> TestClient:
    return TestClient(build_server(FakePipeline(config=config(tmp_path, **cfg)), env=env or {}))


def test_client_may_only_pick_the_configured_backend_by_default(tmp_path):
    with client(tmp_path, backend="extractive") as c:
        assert c.post("/api/ask", json={**Q, "backend": "extractive"}).status_code == 200
        r = c.post("/api/ask", json={**Q, "backend": "local"})
        assert r.status_code == 400 and r.json()["error"] == "BackendNotAllowed"
        assert "RAG_CLIENT_BACKENDS" in r.json()["detail"]
        assert c.post("/api/ask/stream", json={**Q, "backend": "openai"}).status_code == 400
    with client(tmp_path, backend="extractive", client_backends="local") as c:
        assert c.post("/api/ask", json={**Q, "backend": "local"}).status_code == 200


def test_chunked_body_is_refused_while_it_is_read(tmp_path):
    fake = FakePipeline(config=config(tmp_path))
    sent = 0

    def body():
        nonlocal sent
        for _ in range(200):  # 200 MB if the server read it all
            sent += 1
            yield b" " * 1_000_000

    with ServerThread(build_server(fake, env={})) as url:
        try:
            r = httpx.post(url + "/api/ask", content=body(), headers={"content-type": "application/json"})
            assert r.status_code == 413 and r.json()["error"] == "RequestTooLarge"
        except httpx.TransportError:
            pass  # the server answered 413 and closed while we were still sending: also a refusal
    assert sent < 50 and not fake.calls  # refused before the app parsed anything


def test_lone_surrogate_escape_is_a_one_line_400(tmp_path):
    with client(tmp_path) as c:
        r = c.post(
            "/api/ask", content=b'{"question": "hi \\udcff"}', headers={"content-type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["error"] == "InvalidJSON"
        r = c.post(
            "/api/search", content=b'{"query": "\\ud800x"}', headers={"content-type": "application/json"}
        )
        assert r.status_code == 400
        ok = c.post(
            "/api/ask",
            content=b'{"question": "\\u00e9t\\u00e9 \\ud83d\\ude00"}',
            headers={"content-type": "application/json"},
        )
        assert ok.status_code == 200  # a valid surrogate pair is fine


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"question": 5}',
        b"{}",
        b'{"question": "q", "k": 0}',
        b"[1,2]",
        b'{"question": "q", "history": [{"role": "x"}]}',
    ],
)
def test_validation_errors_use_the_documented_shape(tmp_path, body):
    with client(tmp_path) as c:
        r = c.post("/api/ask", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    data = r.json()
    assert set(data) == {"error", "detail"} and data["error"] == "ValidationError"
    assert isinstance(data["detail"], str) and "\n" not in data["detail"]


def test_per_client_rate_limit(tmp_path):
    with client(tmp_path, rate_limit="3/minute") as c:
        codes = [c.post("/api/search", json={"query": "x"}).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.post("/api/feedback", json={"vote": "up"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert c.get("/api/health").status_code == 200  # probes are not rate limited


def test_sign_in_guesses_are_rate_limited(tmp_path):
    env = {"RAG_BASIC_AUTH": "ann:pw"}
    with client(tmp_path, env=env, auth_rate_limit="5/minute") as c:
        bad = {"Authorization": "Basic " + base64.b64encode(b"ann:guess").decode()}
        codes = [c.get("/", headers=bad).status_code for _ in range(7)]
        assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
        good = {"Authorization": "Basic " + base64.b64encode(b"ann:pw").decode()}
        assert c.get("/api/health", headers=good).status_code == 200


def test_non_ascii_credentials_are_a_401_not_a_500(tmp_path):
    with client(tmp_path, env={"RAG_AUTH_TOKEN": "t0ken"}) as c:
        r = c.get("/api/search", headers={"Authorization": b"Bearer caf\xc3\xa9"})
        assert r.status_code == 401
        assert c.get("/?token=%C3%A9%FF").status_code == 401
        assert c.get("/", headers={"Cookie": 'rag_token="\\377'}).status_code == 401


def test_feedback_is_size_limited_and_not_echoed(tmp_path):
    with client(tmp_path) as c:
        r = c.post("/api/feedback", json={"vote": "up", "answer": "x" * 20_000})
        assert r.status_code == 422
        r = c.post("/api/feedback", json={"vote": "down", "question": "q", "answer": "a"})
        assert r.status_code == 200 and r.json()["recorded"].keys() == {"ts", "vote"}
    with client(tmp_path, feedback_max_bytes=10) as c:
        r = c.post("/api/feedback", json={"vote": "up"})
        assert r.status_code == 507 and "RAG_FEEDBACK_MAX_BYTES" in r.json()["detail"]
    lines = (tmp_path / "fb.jsonl").read_text().splitlines()
    assert len(lines) == 1  # appended once, never rewritten


def test_health_hides_corpus_details_from_anonymous_callers(tmp_path):
    with client(tmp_path, env={"RAG_AUTH_TOKEN": "t0ken"}) as c:
        anon = c.get("/api/health").json()
        authed = c.get("/api/health", headers={"Authorization": "Bearer t0ken"}).json()
    assert anon["status"] == "ok" and "documents" not in anon and "chunks" not in anon
    assert authed["documents"] == 2


def test_health_is_not_ok_while_a_slot_is_stuck(tmp_path):
    app = build_server(FakePipeline(config=config(tmp_path, generation_timeout=0.01)), env={})
    ticket = app.state.gate.ticket()
    ticket.acquire()
    try:
        import time

        time.sleep(0.02)
        app.state.gate.stuck_after_s = 0.01
        with TestClient(app) as c:
            r = c.get("/api/health")
        assert r.status_code == 503 and r.json()["generations"]["stuck"] is True
    finally:
        ticket.release()


def test_same_origin_by_default_and_csp_everywhere(tmp_path):
    with client(tmp_path) as c:
        evil = c.options(
            "/api/ask", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in evil.headers
        for path in ("/", "/embed/", "/docs", "/api/health"):
            csp = c.get(path).headers["content-security-policy"]
            assert "frame-ancestors 'self'" in csp and "img-src 'self' data: blob:" in csp
            assert "default-src 'self'" in csp and "http" not in csp.split("frame-ancestors")[0]


def test_gradio_upload_route_is_limited(tmp_path):
    with client(tmp_path, max_upload_bytes=1000, uploads="off") as c:
        r = c.post("/gradio_api/upload", files={"files": ("a.txt", b"x" * 200_000, "text/plain")})
    assert r.status_code in (400, 413)


def test_the_pages_document_uploads_take_what_rag_upload_max_mb_allows(tmp_path):
    """With uploads on, Gradio's route takes files up to RAG_UPLOAD_MAX_MB even over RAG_MAX_UPLOAD_BYTES."""
    with client(tmp_path, max_upload_bytes=1000, upload_max_mb=1) as c:
        ok = c.post("/gradio_api/upload", files={"files": ("a.txt", b"x" * 200_000, "text/plain")})
        big = c.post("/gradio_api/upload", files={"files": ("b.txt", b"x" * 1_300_000, "text/plain")})
    assert ok.status_code == 200, ok.text
    assert big.status_code in (400, 413)


def test_concurrent_extractive_answers_are_not_serialised(tmp_path):
    fake = FakePipeline(config=config(tmp_path, backend="extractive", cpu_slots=4), token_delay=0.2)
    with TestClient(build_server(fake, env={})) as c:
        threads = [threading.Thread(target=lambda: c.post("/api/ask", json=Q)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert fake.max_active > 1


def test_rate_limit_can_be_switched_off_from_the_environment():
    from ui.limits import RateLimit

    cfg = Config.from_env({"RAG_RATE_LIMIT": "off"})
    assert all(RateLimit(cfg.rate_limit).hit("c") == 0 for _ in range(100))
    with pytest.raises(ConfigError, match="not valid"):
        RateLimit("lots")


class DictCounters:
    """SharedCounters in a dict (the contract PgStore keeps in the database), with a settable clock."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, float]] = {}
        self.now = 1000.0
        self.down = False

    def count_hit(self, key, window_s, amount=1):
        if self.down:
            raise ConnectionError("database down")
        count, end = self.rows.get(key, (0, 0.0))
        self.rows[key] = (amount, self.now + window_s) if end <= self.now else (count + amount, end)
        return self.rows[key]

    def count_get(self, key):
        if self.down:
            raise ConnectionError("database down")
        count, end = self.rows.get(key, (0, 0.0))
        return (count, end) if end > self.now else (0, self.now)

    def count_clear(self, key=None):
        n = len(self.rows) if key is None else int(key in self.rows)
        self.rows = {} if key is None else {k: v for k, v in self.rows.items() if k != key}
        return n


def test_replicas_sharing_counters_share_one_budget():
    from ui.limits import RateLimit

    counters = DictCounters()
    a, b = RateLimit("3/minute", counters), RateLimit("3/minute", counters)
    assert [a.hit("10.0.0.1"), b.hit("10.0.0.1"), a.hit("10.0.0.1")] == [0, 0, 0]
    assert b.hit("10.0.0.1") > 0 and a.retry_after("10.0.0.1") > 0  # the 4th, from either replica
    assert a.hit("10.0.0.2") == 0  # per client


def test_shared_limits_let_requests_through_when_the_counters_fail(caplog):
    from ui.limits import RateLimit

    counters = DictCounters()
    limit = RateLimit("1/minute", counters)
    counters.down = True
    assert [limit.hit("c") for _ in range(5)] == [0] * 5
    assert sum("rate limit not applied" in r.message for r in caplog.records) == 1  # one line, not five


def test_limits_with_the_same_spec_on_shared_counters_count_apart():
    from ui.limits import RateLimit

    counters = DictCounters()
    asks, sign_ins = RateLimit("2/minute", counters), RateLimit("2/minute", counters, scope="sign-in")
    assert [asks.hit("c"), asks.hit("c")] == [0, 0] and asks.hit("c") > 0
    assert sign_ins.retry_after("c") == 0 and sign_ins.hit("c") == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1,::1", ["127.0.0.1", "::1"]), (" 10.0.0.0/8 , 192.168.1.5", ["10.0.0.0/8", "192.168.1.5"]),
     ("*", ["*"]), ("none", []), ("OFF", [])],
)
def test_trusted_proxies_setting(value, expected):
    assert trusted_proxies(value) == expected


@pytest.mark.parametrize("value", ["localhost", "10.0.0.0/33", "127.0.0.1;10.0.0.1", "*,10.0.0.1"])
def test_a_mistyped_trusted_proxy_is_an_error_naming_the_setting(value):
    # uvicorn would take it as a literal that never matches, and every client would share one budget
    with pytest.raises(ConfigError, match="RAG_TRUSTED_PROXIES"):
        trusted_proxies(value)


def _search_codes(url: str, forwarded_for: list[str]) -> list[int]:
    with httpx.Client(base_url=url, timeout=10) as http:
        return [http.post("/api/search", json={"query": "x"}, headers={"X-Forwarded-For": ip}).status_code
                for ip in forwarded_for]


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        # the loopback proxy is believed: each forwarded client has its own budget of 2
        ("127.0.0.1,::1", [200, 200, 429, 200, 200, 429]),
        # no proxy trusted: the header is ignored and the one TCP peer spends one budget
        ("none", [200, 200, 429, 429, 429, 429]),
        # a proxy elsewhere is trusted, this peer is not: a client cannot pose as many by sending the header
        ("10.1.2.3", [200, 200, 429, 429, 429, 429]),
    ],
)
def test_rate_limits_count_the_client_a_trusted_proxy_names(tmp_path, trusted, expected):
    cfg = config(tmp_path, rate_limit="2/minute", trusted_proxies=trusted)
    options = {k: v for k, v in uvicorn_options(cfg).items() if k not in ("host", "port")}
    app = build_server(FakePipeline(config=cfg), env={})
    with ServerThread(app, **options) as url:
        assert _search_codes(url, ["10.0.0.1"] * 3 + ["10.0.0.2"] * 3) == expected


@pytest.mark.parametrize(("trusted", "secure"), [("127.0.0.1,::1", True), ("none", False)])
def test_https_behind_a_trusted_proxy_gets_the_cross_site_cookie(tmp_path, trusted, secure):
    # an embed inside a wiki served over https needs SameSite=None; Secure, and only a trusted proxy may say
    # the client used https
    cfg = config(tmp_path, trusted_proxies=trusted)
    options = {k: v for k, v in uvicorn_options(cfg).items() if k not in ("host", "port")}
    app = build_server(FakePipeline(config=cfg), env={"RAG_AUTH_TOKEN": "tok"})
    with ServerThread(app, **options) as url, httpx.Client(base_url=url, timeout=10) as http:
        r = http.get("/api/health?token=tok", headers={"X-Forwarded-Proto": "https"})
        cookie = r.headers.get("set-cookie", "")
        assert "HttpOnly" in cookie
        assert ("SameSite=None; Secure" in cookie) is secure
