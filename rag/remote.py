"""`rag ask` and `rag search` answered by a running `rag serve` over its HTTP API, as our own records.

`RemoteRag(url).stream(...)` yields the `Sources`, `Token`s and `Final` that `Pipeline.stream` yields (read
from `/api/ask/stream?format=ndjson`), and `search(...)` the `Hit`s of the retriever (from `/api/search`),
so each command prints through one code path whichever side did the work. A failure becomes one of our
`RagError`s with one line naming the fix: the server's own error kinds map to the classes the in-process
path raises (same exit codes); 401, busy, unreachable or a connection cut mid-answer say what to set or
suggest `--local`. Credentials: `RAG_AUTH_TOKEN` (bearer) else `RAG_BASIC_AUTH` (user:password), read when
the client is built. Imports only httpx and our records: no torch, faiss, numpy or gradio (the point).
Leaves out choosing the server (`rag.discovery`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from index.errors import (
    BackendError,
    ConfigError,
    IndexCorruptError,
    IndexMissingError,
    ModelMissingError,
    QueryError,
    RagError,
    StoreError,
    UnreadableFileError,
)
from index.records import Hit
from rag.discovery import is_loopback
from rag.records import Event, Final, Sources, Token, Turn, answer_from_json, hit_from_json

# The server's `{"error": kind}` names of our own errors: raised here as the same class, so exit codes match.
_OURS: dict[str, type[RagError]] = {
    cls.__name__: cls
    for cls in (BackendError, ConfigError, IndexCorruptError, IndexMissingError, ModelMissingError,
                QueryError, StoreError, UnreadableFileError)
}
# The API's own refusals of a request (ui/api.py): the user's input, as in-process QueryError / ConfigError.
_REQUEST_KINDS: dict[str, type[RagError]] = {
    "QuestionTooLong": QueryError, "HistoryTooLong": QueryError, "ValidationError": QueryError,
    "BackendNotAllowed": ConfigError,
}
LOCAL_HINT = "or use --local to answer in-process"


class RemoteRag:
    """A `rag serve` at `url` seen as a pipeline: `stream` and `search` in our records."""

    def __init__(self, url: str, timeout: float = 120.0, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.url = url.rstrip("/")
        token, basic = env.get("RAG_AUTH_TOKEN", ""), env.get("RAG_BASIC_AUTH", "")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        user, _, password = basic.partition(":")
        self._auth = httpx.BasicAuth(user, password) if basic and not token else None
        self.sends_credentials = bool(token or basic)
        # The server ends an answer at its deadline (RAG_GENERATION_TIMEOUT) and says so; wait a bit longer.
        self.timeout = httpx.Timeout(timeout + 15.0, connect=5.0)

    def _client(self) -> httpx.Client:
        return httpx.Client(
            headers=self._headers, auth=self._auth, timeout=self.timeout,
            trust_env=not is_loopback(self.url),  # a proxy from HTTP_PROXY must not carry loopback calls
        )

    def stream(
        self, question: str, history: Sequence[Turn] = (), k: int | None = None, backend: str | None = None
    ) -> Iterator[Event]:
        """Like `Pipeline.stream`; raises RagErrors naming the fix."""
        body = {
            "question": question,
            "history": [{"role": t.role, "content": t.content} for t in history],
            "k": k,
            "backend": backend,
        }
        got_any = False
        try:
            with self._client() as client, client.stream(
                "POST", self.url + "/api/ask/stream", params={"format": "ndjson"}, json=body
            ) as r:
                if r.status_code != 200:
                    r.read()
                    raise self._error(r)
                for line in r.iter_lines():
                    if not line.strip():
                        continue
                    kind, data = self._event(line)
                    got_any = True
                    if kind == "sources":
                        asked = str(data.get("standalone_question") or "")
                        # the API sends the question itself when nothing was rewritten; the pipeline, ""
                        yield Sources(
                            hits=tuple(hit_from_json(h) for h in data.get("retrieved", [])),
                            standalone_question="" if asked.strip() == question.strip() else asked,
                        )
                    elif kind == "token":
                        yield Token(str(data.get("text", "")))
                    elif kind == "final":
                        yield Final(answer_from_json(data))
                        return
                    elif kind == "error":
                        raise self._from_kind(str(data.get("error", "")), str(data.get("detail", "")), 500)
        except httpx.TransportError as err:
            raise self._transport(err, midway=got_any) from err
        raise BackendError(
            f"The rag serve at {self.url} ended the answer without a result. Check its log, retry, "
            f"{LOCAL_HINT}."
        )

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """Like `HybridRetriever.search`: the best passages, ranks from 1."""
        try:
            with self._client() as client:
                r = client.post(self.url + "/api/search", json={"query": query, "k": k})
        except httpx.TransportError as err:
            raise self._transport(err, midway=False) from err
        if r.status_code != 200:
            raise self._error(r)
        try:
            return [hit_from_json(h) for h in r.json()["results"]]
        except (ValueError, KeyError, TypeError) as err:
            raise self._not_ours() from err

    # --- errors ----------------------------------------------------------------------------------------
    def _event(self, line: str) -> tuple[str, dict[str, Any]]:
        try:
            msg = json.loads(line)
            return str(msg["event"]), dict(msg["data"])
        except (ValueError, KeyError, TypeError) as err:
            raise self._not_ours() from err

    def _not_ours(self) -> RagError:
        return ConfigError(
            f"{self.url} answered, but not as a rag serve does. Fix RAG_SERVER_URL / --server, {LOCAL_HINT}."
        )

    def _error(self, r: httpx.Response) -> RagError:
        """The RagError for a non-200 reply."""
        try:
            body = r.json()
            kind, detail = str(body.get("error", "")), str(body.get("detail", ""))
        except (ValueError, AttributeError):
            kind, detail = "", ""
        where = f"The rag serve at {self.url}"
        if r.status_code == 401:
            if self.sends_credentials:
                return ConfigError(
                    f"{where} refused the credentials in RAG_AUTH_TOKEN / RAG_BASIC_AUTH. Set them to the "
                    f"server's, {LOCAL_HINT}."
                )
            return ConfigError(
                f"{where} needs credentials: set RAG_AUTH_TOKEN (or RAG_BASIC_AUTH=user:password) to the "
                f"server's, {LOCAL_HINT}."
            )
        if r.status_code in (429, 503) and kind in ("Busy", "TooManyRequests", "TooManyAttempts"):
            wait = r.headers.get("retry-after", "a few")
            return BackendError(f"{where} is busy (HTTP {r.status_code}). Retry in {wait} s, {LOCAL_HINT}.")
        if r.status_code == 404 and not kind.endswith("Error"):
            return ConfigError(
                f"{self.url} has no rag API ({r.request.url.path} not found). Fix RAG_SERVER_URL / --server, "
                f"{LOCAL_HINT}."
            )
        return self._from_kind(kind, detail, r.status_code)

    def _from_kind(self, kind: str, detail: str, status: int) -> RagError:
        detail = _line(detail) or f"HTTP {status}"
        if kind in _OURS:  # the pipeline's own message: the same line in-process work would print
            return _OURS[kind](detail)
        if kind in _REQUEST_KINDS:
            return _REQUEST_KINDS[kind](f"{detail.rstrip('.')} ({LOCAL_HINT}).")
        if 400 <= status < 500:
            return QueryError(f"The rag serve at {self.url} refused the request: {detail}")
        return BackendError(
            f"The rag serve at {self.url} failed ({detail.rstrip('.')}). Check its log, retry, {LOCAL_HINT}."
        )

    def _transport(self, err: httpx.TransportError, midway: bool) -> RagError:
        reason = _line(str(err)) or type(err).__name__
        if isinstance(err, httpx.TimeoutException) and not isinstance(err, httpx.ConnectTimeout):
            return BackendError(
                f"The rag serve at {self.url} sent nothing for {self.timeout.read:.0f} s. Check its log, "
                f"{LOCAL_HINT}."
            )
        if midway or not isinstance(err, httpx.ConnectError | httpx.ConnectTimeout):
            return BackendError(
                f"The connection to the rag serve at {self.url} broke mid-answer ({reason}). Retry, "
                f"{LOCAL_HINT}."
            )
        return BackendError(
            f"Cannot reach the rag serve at {self.url} ({reason}). Start `rag serve`, fix RAG_SERVER_URL / "
            f"--server, {LOCAL_HINT}."
        )


def _line(text: str) -> str:
    """Example: _line("a\\n  b") -> 'a b'."""
    return " ".join(text.split())
