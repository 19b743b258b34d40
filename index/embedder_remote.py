"""An `Embedder` that calls an OpenAI-compatible `/v1/embeddings` endpoint (TEI, vLLM, Ollama, OpenAI).

`RemoteEmbedder("http://gpu-box:8080/v1", "all-MiniLM-L6-v2")` sends batches of `batch_size` texts,
`concurrency` requests at a time, retries a refused connection, a 429 or a 5xx a few times with
back-off, and L2-normalises the rows (not every server does). `name` is the model name the server
expects and the one the index records: indexing through a server that runs MiniLM and querying with the
in-process MiniLM match. The API key, if any, is read from RAG_EMBED_API_KEY when the embedder is built.
Leaves out token-based batching (batches are counted in texts) and streaming.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from index.errors import ModelMissingError

_RETRIES = 3
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class RemoteEmbedder:
    """Embeddings from an OpenAI-compatible endpoint; `base_url` ends in /v1 (or in /embeddings)."""

    def __init__(
        self,
        base_url: str,
        name: str,
        batch_size: int = 64,
        concurrency: int = 4,
        timeout: float = 60.0,
        api_key: str | None = None,
    ) -> None:
        import httpx

        self.name = name
        self.url = _embeddings_url(base_url)
        self.batch_size = max(1, batch_size)
        self.concurrency = max(1, concurrency)
        self.preferred_batch = self.batch_size * self.concurrency  # what `build_index` hands over at once
        key = os.environ.get("RAG_EMBED_API_KEY", "") if api_key is None else api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)
        self._dim: int | None = None
        self.requests = 0  # sent so far (for tests and progress reports)

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batches = [list(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        if len(batches) == 1 or self.concurrency == 1:
            parts = [self._post(b) for b in batches]
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(batches))) as pool:
                parts = list(pool.map(self._post, batches))
        vecs = np.vstack(parts).astype(np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        vecs = (vecs / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        self._dim = vecs.shape[1]
        return np.ascontiguousarray(vecs)

    def _post(self, batch: list[str]) -> np.ndarray:
        import httpx

        error: str = ""
        for attempt in range(_RETRIES):
            if attempt:
                time.sleep(0.5 * 2 ** (attempt - 1))
            try:
                self.requests += 1
                response = self._client.post(self.url, json={"model": self.name, "input": batch})
            except httpx.TransportError as err:
                error = f"{type(err).__name__}: {err}"
                continue
            if response.status_code in _RETRY_STATUS:
                error = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise ModelMissingError(
                    f"The embedding endpoint {self.url} refused model {self.name!r} "
                    f"(HTTP {response.status_code}: {response.text[:200]}). "
                    "Check RAG_EMBED_MODEL (the name the server serves) and RAG_EMBED_API_KEY."
                )
            return _vectors(response.json(), len(batch), self.url)
        raise ModelMissingError(
            f"Cannot reach the embedding endpoint {self.url} ({error}). Start it or fix RAG_EMBED_URL, "
            "or unset RAG_EMBED_URL to embed in-process."
        )

    def close(self) -> None:
        self._client.close()


def _embeddings_url(base_url: str) -> str:
    """Example: "http://h:8080/v1" -> 'http://h:8080/v1/embeddings'."""
    url = base_url.rstrip("/")
    return url if url.endswith("/embeddings") else url + "/embeddings"


def _vectors(payload: Any, expected: int, url: str) -> np.ndarray:
    try:
        rows = sorted(payload["data"], key=lambda d: d.get("index", 0))
        vecs = np.array([r["embedding"] for r in rows], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as err:
        raise ModelMissingError(
            f"The embedding endpoint {url} answered in an unexpected shape ({type(err).__name__}). "
            "RAG_EMBED_URL must point at an OpenAI-compatible /v1 API."
        ) from err
    if vecs.ndim != 2 or len(vecs) != expected:
        raise ModelMissingError(
            f"The embedding endpoint {url} returned {len(vecs)} vectors for {expected} texts. "
            "RAG_EMBED_URL must point at an OpenAI-compatible /v1 API."
        )
    return vecs
