"""The remote embedder against a real OpenAI-compatible server on loopback that serves the real MiniLM.

The server is a small FastAPI app run by uvicorn in a thread (a real HTTP server, not a mock of httpx);
it returns raw (unnormalised) vectors, can fail its first requests with 503, and counts requests.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.builder import build_index
from index.embedder import DEFAULT_MODEL, load_embedder
from index.embedder_remote import RemoteEmbedder
from index.errors import ModelMissingError

pytestmark = pytest.mark.integration


class _Server:
    def __init__(self) -> None:
        import uvicorn
        from fastapi import FastAPI
        from fastapi.responses import JSONResponse

        self.requests = 0
        self.fail_next = 0
        model = load_embedder("").model  # type: ignore[attr-defined]
        app = FastAPI()

        @app.post("/v1/embeddings")
        def embeddings(body: dict[str, Any]) -> Any:
            self.requests += 1
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"error": "warming up"}, status_code=503)
            if body.get("model") != DEFAULT_MODEL:
                return JSONResponse({"error": f"model {body.get('model')} not found"}, status_code=404)
            vecs = model.encode(list(body["input"]), normalize_embeddings=False, convert_to_numpy=True)
            data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vecs)]
            return {"object": "list", "model": DEFAULT_MODEL, "data": data[::-1]}  # any order: `index` counts

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.stop()


TEXTS = [f"Sentence number {i} about Microsoft investing in AI start-ups." for i in range(10)]


def test_same_vectors_as_in_process(server: _Server) -> None:
    remote = RemoteEmbedder(server.url, DEFAULT_MODEL, batch_size=4, concurrency=2)
    before = server.requests
    vecs = remote.embed(TEXTS)
    assert server.requests - before == 3  # 4 + 4 + 2
    np.testing.assert_allclose(vecs, load_embedder("").embed(TEXTS), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)  # normalised client-side
    assert remote.dim == 384


def test_index_remotely_query_in_process(server: _Server, seeds_dir: Path, tmp_path: Path) -> None:
    from rag.config import Config
    from rag.retriever import open_retriever

    remote = load_embedder("", url=server.url)
    assert isinstance(remote, RemoteEmbedder) and remote.name == DEFAULT_MODEL
    report = build_index([seeds_dir], tmp_path / "ix", remote, progress=False)
    assert report.added == report.chunks > 10
    retriever = open_retriever(Config.from_env({}, index_dir=str(tmp_path / "ix")))  # the local MiniLM
    hits = retriever.search("How much did Microsoft put into Inflection?", 3)
    assert hits[0].chunk.source == "000_cd01c28a230eedd7.txt"


def test_retries_a_busy_server(server: _Server) -> None:
    server.fail_next = 2
    vecs = RemoteEmbedder(server.url, DEFAULT_MODEL).embed(TEXTS[:2])
    assert vecs.shape == (2, 384) and server.fail_next == 0


def test_unknown_model_names_the_setting(server: _Server) -> None:
    with pytest.raises(ModelMissingError, match=r"refused model 'nope'.*RAG_EMBED_MODEL"):
        RemoteEmbedder(server.url, "nope").embed(["x"])


def test_unreachable_endpoint_names_the_fix() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    with pytest.raises(ModelMissingError, match=r"Cannot reach the embedding endpoint .*RAG_EMBED_URL"):
        RemoteEmbedder(f"http://127.0.0.1:{port}/v1", DEFAULT_MODEL, timeout=2).embed(["x"])
