"""A scripted pipeline for the UI and API tests: predictable events, no model, no index.

Questions containing "refuse" are declined, "cloud" answered from the second document, "backend-down"
raise BackendError mid-stream, "boom" raise a plain RuntimeError; anything else is answered from two
small documents with citation [1].
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from index.errors import BackendError, QueryError
from index.records import Chunk, Document, Hit
from rag.config import Config
from rag.records import Answer, Citation, Event, Final, Sources, Token, Turn

DOC_A = Document(
    id="a" * 16,
    source="000_invest.txt",
    title="Microsoft invests",
    text="Intro line.\nMicrosoft invested $650 million in Inflection. "
    "Mustafa Suleyman leads Microsoft AI.\nEnd.",
)
DOC_B = Document(
    id="b" * 16,
    source="001_cloud.txt",
    title="Cloud rights",
    text="Azure has exclusive rights for OpenAI until 2032. Other text <script>x</script>.",
)
DOCS = {d.source: d for d in (DOC_A, DOC_B)}


def _chunk(doc: Document, start: int, end: int) -> Chunk:
    return Chunk(
        id=f"{doc.id[:4]}-{start}",
        doc_id=doc.id,
        source=doc.source,
        title=doc.title,
        text=doc.text[start:end],
        start=start,
        end=end,
    )


CHUNK_A = _chunk(DOC_A, 12, len(DOC_A.text) - 5)
CHUNK_B = _chunk(DOC_B, 0, len(DOC_B.text))
HITS = (Hit(CHUNK_A, 0.9, 1, {"dense": 0.9}), Hit(CHUNK_B, 0.5, 2, {"bm25": 3.0}))
QUOTE = "Microsoft invested $650 million in Inflection."
QUOTE_B = "Azure has exclusive rights for OpenAI until 2032."


@dataclass
class FakePipeline:
    config: Config = field(default_factory=lambda: Config.from_env({}, max_question_chars=200))
    token_delay: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)
    active: int = 0
    max_active: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def stream(
        self,
        question: str,
        history: Sequence[Turn] = (),
        k: int | None = None,
        backend: str | None = None,
        cancelled: threading.Event | None = None,
    ) -> Iterator[Event]:
        self.calls.append({"question": question, "history": list(history), "k": k, "backend": backend,
                           "cancelled": cancelled})
        if not question.strip():
            raise QueryError("The question is empty.")
        hits = HITS[: k or len(HITS)]
        yield Sources(hits=hits, standalone_question=question)
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if "refuse" in question:
                text, cits, refused = "I can't answer that from the documents.", (), True
            elif "cloud" in question.lower():  # cites the other document, for per-answer sources
                text, refused = "Azure has the exclusive rights [1].", False
                at = DOC_B.text.index(QUOTE_B)
                cits = (Citation(1, DOC_B.source, CHUNK_B.id, at, at + len(QUOTE_B), QUOTE_B, DOC_B.title),)
            else:
                text, refused = "Microsoft invested $650 million [1].", False
                at = DOC_A.text.index(QUOTE)
                cits = (Citation(1, DOC_A.source, CHUNK_A.id, at, at + len(QUOTE), QUOTE, DOC_A.title),)
            for piece in ["Microsoft ", "invested ", "$650 million ", "[1]."]:
                if "backend-down" in question:
                    raise BackendError("The model backend is unreachable. Start it or pick another backend.")
                if "boom" in question:
                    raise RuntimeError("secret internal detail")
                if self.token_delay:
                    time.sleep(self.token_delay * (10 if "slowly" in question else 1))
                yield Token(piece)
            answer = Answer(
                question=question,
                text=text,
                refused=refused,
                citations=cits,
                retrieved=hits,
                backend=backend or self.config.backend,
                timings_ms={"total": 1.0},
            )
            yield Final(answer)
        finally:
            with self._lock:
                self.active -= 1

    def ask(
        self, question: str, history: Sequence[Turn] = (), k: int | None = None, backend: str | None = None
    ) -> Answer:
        final = [e for e in self.stream(question, history, k, backend) if isinstance(e, Final)]
        return final[-1].answer

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        return list(HITS[: k or len(HITS)])

    def document(self, source: str) -> Document | None:
        return DOCS.get(source)

    def health(self) -> dict[str, Any]:
        return {
            "index_loaded": True,
            "documents": 2,
            "chunks": 2,
            "embed_model": "fake",
            "backend": self.config.backend,
            "model_ready": True,
        }

    def warm_up(self, backend: str | None = None) -> None:
        return None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """uvicorn on a free loopback port in a background thread: `with ServerThread(app) as url: ...`."""

    def __init__(self, app: Any, port: int | None = None, **options: Any) -> None:
        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = {"host": "127.0.0.1", "log_level": "warning", **options, "port": self.port}
        cfg = uvicorn.Config(app, lifespan="on", **settings)
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_browser():
    """A module fixture body: Debian's Chromium via Playwright, or a skip saying how to get it."""
    from pathlib import Path

    import pytest

    if not Path(CHROMIUM).exists():
        pytest.skip(
            "no /usr/bin/chromium: run `make browser` (apt-get install chromium) for the browser tests"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
