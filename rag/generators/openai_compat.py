"""`openai` backend: any OpenAI-compatible `/chat/completions` endpoint, streamed over SSE with httpx.

Works with OpenAI, Azure OpenAI (deployment URL as base), vLLM, llama.cpp's server, LM Studio and Ollama's
`/v1`. Settings: `RAG_LLM_BASE_URL` (default https://api.openai.com/v1), `RAG_LLM_MODEL`, and the key from
`RAG_LLM_API_KEY` or `OPENAI_API_KEY`, read when the backend is built, never at import.
`RAG_LLM_TIMEOUT` is one total deadline per generation (connect, first token and the whole answer), kept by
a watchdog thread (`_Watchdog`), because httpx's timeouts are per read: a server that trickles a byte every
few seconds would otherwise hold the calling thread for ever. The watchdog also ends the request at once
when the caller cancels (`GenerationRequest.cancelled`).
Every failure becomes a BackendError whose message names the fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import httpx

from index.errors import BackendError
from rag.config import Config
from rag.generators import GenerationRequest

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
CONNECT_TIMEOUT_S = 10.0
WATCH_POLL_S = 0.05  # how often the watchdog looks at the cancel flag; bounds how late a cancel is seen


class _Watchdog:
    """Ends one HTTP exchange at `deadline` (monotonic) or when `cancelled` is set, from its own thread.

    Closing a socket does not wake a read blocked on it in another thread (Linux); shutting it down does.
    So the watchdog keeps the exchange's socket, taken from httpx's `trace` extension when the connection
    is opened, or from the response when a kept-alive connection is reused, and shuts it down.
    Example: with _Watchdog(time.monotonic() + 60, None) as w: client.stream(..., extensions=w.extensions)
    """

    def __init__(self, deadline: float, cancelled: threading.Event | None) -> None:
        self.deadline, self.cancelled = deadline, cancelled
        self.expired = False  # the deadline passed (as opposed to a cancel)
        self.fired = threading.Event()
        self._done = threading.Event()
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self.extensions = {"trace": self._trace}

    def __enter__(self) -> _Watchdog:
        threading.Thread(target=self._watch, name="rag-openai-deadline", daemon=True).start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()

    def left(self) -> float:
        return max(0.001, self.deadline - time.monotonic())

    def adopt(self, network_stream: Any) -> None:
        """Keep the socket under `network_stream` (httpcore's); shut it at once if the time is already up."""
        get = getattr(network_stream, "get_extra_info", None)
        sock = get("socket") if callable(get) else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sock = sock
            if self.fired.is_set():
                self._shut()

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        # TLS wraps (and detaches) the TCP socket, so the last one opened is the one to shut down.
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            self.adopt(info.get("return_value"))

    def _watch(self) -> None:
        while not self._done.wait(min(WATCH_POLL_S, self.left())):
            cancelled = self.cancelled is not None and self.cancelled.is_set()
            if cancelled or time.monotonic() >= self.deadline:
                self.expired = not cancelled
                self.fired.set()
                self._shut()
                return

    def _shut(self) -> None:
        with self._lock:
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                # The base class's shutdown: SSLSocket's own one would also drop its TLS state under the
                # reading thread's feet.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class OpenAIGenerator:
    """Streams chat completions from an OpenAI-compatible server."""

    name = "openai"

    def __init__(self, config: Config, client: httpx.Client | None = None) -> None:
        self.base_url = (config.llm_base_url or DEFAULT_BASE_URL).rstrip("/")
        # A GGUF path is the local backend's setting, not a model name a server knows.
        model = config.llm_model
        self.model = model if model and not model.lower().endswith(".gguf") else DEFAULT_MODEL
        self.api_key = os.environ.get("RAG_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or ""
        self.timeout = config.llm_timeout  # total seconds per generation
        # A new connection per generation (no keep-alive): the watchdog then holds its socket from the start;
        # a reused connection's socket is only reachable once its response headers are in. Timeouts are set
        # per request, from what is left of the total.
        self._client = client or httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))

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
        with _Watchdog(time.monotonic() + self.timeout, request.cancelled) as watch:
            try:
                yield from self._exchange(url, body, watch)
            except (httpx.HTTPError, BackendError) as err:
                if not watch.fired.is_set():
                    raise
                if watch.expired:
                    raise self._deadline_error() from err
                return  # cancelled: whatever the shut socket raised, nobody is waiting for it
            if watch.expired:  # the shut socket may also read as a clean end of the answer
                raise self._deadline_error()

    def _exchange(self, url: str, body: dict[str, Any], watch: _Watchdog) -> Iterator[str]:
        # Each read may wait for what is left of the total, never longer (the watchdog ends it then anyway).
        left = watch.left()
        timeout = httpx.Timeout(left, connect=min(CONNECT_TIMEOUT_S, left))
        try:
            with self._client.stream(
                "POST", url, json=body, headers=self._headers(), timeout=timeout, extensions=watch.extensions
            ) as response:
                watch.adopt(response.extensions.get("network_stream"))  # a reused connection
                if response.status_code >= 400:
                    response.read()
                    raise self._http_error(response)
                for line in response.iter_lines():
                    if watch.fired.is_set():
                        break
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
            raise self._deadline_error() from err
        except httpx.HTTPError as err:
            if watch.fired.is_set():
                raise  # the watchdog's doing; stream() says why
            raise BackendError(f"Request to {url} failed ({_short(err)}). Check RAG_LLM_BASE_URL.") from err

    def _deadline_error(self) -> BackendError:
        return BackendError(
            f"The server at {self.base_url} did not finish the answer within {self.timeout:g} s "
            "(connecting, the first token and the whole answer together). Check that it is running and "
            "not overloaded, or raise RAG_LLM_TIMEOUT."
        )

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
