"""The `openai` backend: SSE parsing and error mapping (unit, mock transport), then a real loopback server."""

from __future__ import annotations

import dataclasses
import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from index.errors import BackendError
from rag.config import Config
from rag.generators import GenerationRequest, build_generator
from rag.generators.openai_compat import OpenAIGenerator

REQUEST = GenerationRequest(
    messages=({"role": "user", "content": "Say hello."},), question="Say hello.", passages=(), max_tokens=8
)


def _sse(*pieces: str) -> bytes:
    lines = [f"data: {json.dumps({'choices': [{'delta': {'content': p}}]})}\n\n" for p in pieces]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


def _generator(handler, monkeypatch, **config) -> OpenAIGenerator:
    monkeypatch.setenv("RAG_LLM_API_KEY", "sk-test")
    cfg = Config.from_env({}, llm_base_url="http://127.0.0.1:9/v1", llm_model="m", **config)
    return OpenAIGenerator(cfg, client=httpx.Client(transport=httpx.MockTransport(handler)))


@pytest.mark.unit
def test_streams_deltas_and_sends_key_model_and_limits(monkeypatch):
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["auth"] = request.headers["authorization"]
        seen["body"] = json.loads(request.content)
        seen["url"] = str(request.url)
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, content=_sse("Hel", "lo", "."), headers=headers)

    gen = _generator(handler, monkeypatch)
    assert "".join(gen.stream(REQUEST)) == "Hello."
    assert seen["auth"] == "Bearer sk-test" and seen["url"] == "http://127.0.0.1:9/v1/chat/completions"
    assert seen["body"]["model"] == "m" and seen["body"]["stream"] is True and seen["body"]["max_tokens"] == 8


@pytest.mark.unit
@pytest.mark.parametrize(
    ("status", "fix"),
    [(401, "RAG_LLM_API_KEY"), (403, "RAG_LLM_API_KEY"), (404, "RAG_LLM_MODEL"), (500, "HTTP 500")],
)
def test_http_errors_name_the_fix(monkeypatch, status, fix):
    gen = _generator(lambda r: httpx.Response(status, json={"error": {"message": "nope"}}), monkeypatch)
    with pytest.raises(BackendError, match=fix):
        list(gen.stream(REQUEST))


@pytest.mark.unit
def test_timeout_names_the_setting(monkeypatch):
    def handler(request):
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(BackendError, match="RAG_LLM_TIMEOUT"):
        list(_generator(handler, monkeypatch).stream(REQUEST))


@pytest.mark.unit
def test_key_is_read_when_built_not_at_import(monkeypatch):
    monkeypatch.delenv("RAG_LLM_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert build_generator("openai", Config.from_env({})).api_key == "sk-env"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_connection_refused_is_one_clear_error():
    gen = build_generator("openai", Config.from_env({}, llm_base_url=f"http://127.0.0.1:{_closed_port()}/v1"))
    with pytest.raises(BackendError, match="Cannot reach .* Start it, or fix RAG_LLM_BASE_URL"):
        list(gen.stream(REQUEST))


@pytest.fixture(scope="module")
def llama_server_url():
    """A real OpenAI-compatible server: llama.cpp's, serving the default small model on loopback."""
    local = build_generator("local", Config.from_env({}))
    return local.address.rstrip("/")


@pytest.mark.integration
@pytest.mark.slow
def test_real_loopback_server_streams_an_answer(llama_server_url):
    config = Config.from_env({}, llm_base_url=llama_server_url + "/v1", llm_model="qwen")
    gen = build_generator("openai", config)
    pieces = list(gen.stream(GenerationRequest(
        messages=({"role": "user", "content": "What is 2 + 2? Reply with the number only."},),
        question="", passages=(), max_tokens=8,
    )))
    assert len(pieces) >= 1 and "4" in "".join(pieces)


@pytest.mark.integration
@pytest.mark.slow
def test_real_server_wrong_path_is_a_clear_error(llama_server_url):
    gen = build_generator("openai", Config.from_env({}, llm_base_url=llama_server_url + "/nothing/here"))
    with pytest.raises(BackendError, match="HTTP 404"):
        list(gen.stream(REQUEST))


@pytest.mark.integration
@pytest.mark.slow
def test_pipeline_over_seeds_with_the_openai_backend(real_config, llama_server_url):
    from rag.pipeline import build_pipeline

    config = real_config.replace(backend="openai", llm_base_url=llama_server_url + "/v1")
    answer = build_pipeline(config).ask("How much did Microsoft put into Inflection?")
    assert not answer.refused and "650" in answer.text
    assert answer.citations[0].source.startswith("000_")


# --- one total deadline per generation, against a real server on loopback that answers too slowly -------

EVENT = b'data: {"choices": [{"delta": {"content": "word "}}]}\n\n'


class _SlowServer(socketserver.ThreadingTCPServer):
    """An OpenAI-compatible endpoint on 127.0.0.1 that trickles. `mode`: `headers` (the status line, a byte
    every 0.2 s), `body` (headers, then a byte of one endless line every 0.2 s), `events` (a whole event
    every 0.2 s, for ever), `silent` (headers, then nothing)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str) -> None:
        self.mode, self.stop = mode, threading.Event()
        super().__init__(("127.0.0.1", 0), _SlowHandler)

    def __enter__(self):  # type: ignore[no-untyped-def]
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __exit__(self, *exc):  # type: ignore[no-untyped-def]
        self.stop.set()
        self.shutdown()
        self.server_close()


class _SlowHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: _SlowServer = self.server  # type: ignore[assignment]
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.request.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(
            b"content-length")))
        while len(body) < length:
            body += self.request.recv(65536)
        headers = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        if server.mode == "headers":
            self._trickle(server, (headers[i : i + 1] for i in range(len(headers))))
            return
        self.request.sendall(headers)
        if server.mode == "body":
            self._trickle(server, (b"1\r\nx\r\n" for _ in iter(int, 1)))
        elif server.mode == "events":
            self._trickle(server, (b"%x\r\n%s\r\n" % (len(EVENT), EVENT) for _ in iter(int, 1)))
        else:
            server.stop.wait(30)

    def _trickle(self, server: _SlowServer, pieces: Iterator[bytes]) -> None:
        for piece in pieces:
            if server.stop.wait(0.2):
                return
            try:
                self.request.sendall(piece)
            except OSError:  # the client hung up: what the deadline is for
                return


def _slow_generator(url: str, total_s: float) -> OpenAIGenerator:
    return OpenAIGenerator(Config.from_env({}, llm_base_url=url, llm_model="m", llm_timeout=str(total_s)))


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["headers", "body", "events"])
def test_a_trickling_server_is_cut_off_at_the_total_deadline(mode):
    """Each read is quick, so a per-read timeout never fires; the total deadline (1.5 s) still ends it."""
    with _SlowServer(mode) as url:
        gen = _slow_generator(url, 1.5)
        pieces: list[str] = []
        start = time.monotonic()
        with pytest.raises(BackendError, match=r"within 1\.5 s .*raise RAG_LLM_TIMEOUT"):
            for piece in gen.stream(REQUEST):
                pieces.append(piece)
        took = time.monotonic() - start
    assert 1.4 <= took < 6.0  # generous upper bound for a loaded machine; without the deadline: for ever
    assert ("word " in pieces) == (mode == "events")  # what came in time was streamed


@pytest.mark.integration
def test_a_cancel_ends_a_silent_request_at_once_and_quietly():
    with _SlowServer("silent") as url:
        cancelled = threading.Event()
        request = dataclasses.replace(REQUEST, cancelled=cancelled)
        threading.Timer(0.3, cancelled.set).start()
        start = time.monotonic()
        assert list(_slow_generator(url, 60).stream(request)) == []
        assert time.monotonic() - start < 5.0  # not the 60 s deadline
