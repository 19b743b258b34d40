"""`openai` backend: any OpenAI-compatible `/chat/completions` endpoint, streamed over SSE with httpx.

Works with OpenAI, Azure OpenAI (deployment URL as base), vLLM, llama.cpp's server, LM Studio and Ollama's
`/v1`. Settings: `RAG_LLM_BASE_URL` (default https://api.openai.com/v1), `RAG_LLM_MODEL`, and the key from
`RAG_LLM_API_KEY` or `OPENAI_API_KEY`, read when the backend is built, never at import.
Every failure becomes a BackendError whose message names the fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx

from index.errors import BackendError
from rag.config import Config
from rag.generators import GenerationRequest

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"


class OpenAIGenerator:
    """Streams chat completions from an OpenAI-compatible server."""

    name = "openai"

    def __init__(self, config: Config, client: httpx.Client | None = None) -> None:
        self.base_url = (config.llm_base_url or DEFAULT_BASE_URL).rstrip("/")
        # A GGUF path is the local backend's setting, not a model name a server knows.
        model = config.llm_model
        self.model = model if model and not model.lower().endswith(".gguf") else DEFAULT_MODEL
        self.api_key = os.environ.get("RAG_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or ""
        self.timeout = config.llm_timeout
        self._client = client or httpx.Client(timeout=httpx.Timeout(config.llm_timeout, connect=10.0))

    @property
    def ready(self) -> bool:
        return True

    def warm_up(self) -> None:
        """Nothing to load; the first request reveals whether the server is reachable."""

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
            headers["api-key"] = self.api_key  # Azure OpenAI reads this header instead
        return headers

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(request.messages),
            "stream": True,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        url = f"{self.base_url}/chat/completions"
        try:
            with self._client.stream("POST", url, json=body, headers=self._headers()) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._http_error(response)
                for line in response.iter_lines():
                    text = _parse_sse_line(line)
                    if text is None:
                        break
                    if text:
                        yield text
        except httpx.ConnectError as err:
            raise BackendError(
                f"Cannot reach the OpenAI-compatible server at {self.base_url} ({_short(err)}). Start it, or "
                "fix RAG_LLM_BASE_URL (e.g. http://127.0.0.1:8080/v1), or use `--backend local`."
            ) from err
        except httpx.TimeoutException as err:
            raise BackendError(
                f"The server at {self.base_url} did not answer within {self.timeout:g} s. "
                "Check that it is running, or raise RAG_LLM_TIMEOUT."
            ) from err
        except httpx.HTTPError as err:
            raise BackendError(f"Request to {url} failed ({_short(err)}). Check RAG_LLM_BASE_URL.") from err

    def _http_error(self, response: httpx.Response) -> BackendError:
        detail = _error_detail(response)
        code = response.status_code
        if code in (401, 403):
            return BackendError(
                f"The server at {self.base_url} rejected the API key (HTTP {code}{detail}). "
                "Set RAG_LLM_API_KEY (or OPENAI_API_KEY) to a valid key."
            )
        if code == 404:
            return BackendError(
                f"Not found at {self.base_url} (HTTP 404{detail}): the model {self.model!r} or the "
                "endpoint does not exist. Check RAG_LLM_MODEL and that RAG_LLM_BASE_URL ends with /v1."
            )
        if code == 429:
            return BackendError(
                f"The server at {self.base_url} is rate limiting (HTTP 429{detail}). Retry later."
            )
        return BackendError(f"The server at {self.base_url} answered HTTP {code}{detail}.")


def _parse_sse_line(line: str) -> str | None:
    """Text delta of one SSE line; "" for lines without text, None at `[DONE]`.

    Example: _parse_sse_line('data: {"choices":[{"delta":{"content":"Hi"}}]}') -> 'Hi'
    """
    line = line.strip()
    if not line.startswith("data:"):
        return ""
    data = line[5:].strip()
    if data == "[DONE]":
        return None
    try:
        event = json.loads(data)
    except json.JSONDecodeError:
        return ""
    if isinstance(event, dict) and event.get("error"):
        raise BackendError(f"The server reported an error mid-answer: {_message(event['error'])}")
    parts = []
    for choice in event.get("choices") or ():
        delta = choice.get("delta") or choice.get("message") or {}
        if delta.get("content"):
            parts.append(delta["content"])
    return "".join(parts)


def _message(error: Any) -> str:
    return str(error.get("message", error)) if isinstance(error, dict) else str(error)


def _error_detail(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        text = response.text.strip()
        return f": {text[:160]}" if text else ""
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    return f": {_message(error)[:160]}"


def _short(err: Exception) -> str:
    return str(err).splitlines()[0][:160] if str(err) else type(err).__name__
