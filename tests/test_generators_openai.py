"""The `openai` backend: SSE parsing and error mapping (unit, mock transport), then a real loopback server."""

from __future__ import annotations

import json
import socket

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
