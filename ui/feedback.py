"""Thumbs up/down on answers, appended as JSON lines to `Config.feedback_path` for later review.

One line per vote: {"ts", "vote", "question", "answer", "citations", "backend", "origin"}, plus
"conversation_id" and "message_id" for votes from the chat page. With RAG_STORE=postgres (or a
`postgresql://` URL as the path) the same records go to the database's `rag_feedback` table instead, so
every replica writes to one place.
Leaves out any review tooling; the file is plain JSONL (`jq`, pandas).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()  # one process may serve many sessions; keep each line whole
VOTES = {"up", "down"}


def normalize_vote(vote: Any) -> str:
    """Map UI/API vote spellings to "up"/"down". Example: normalize_vote(True) -> 'up'."""
    if vote is True or str(vote).strip().lower() in {"up", "like", "liked", "+1", "1", "true", "👍"}:
        return "up"
    if vote is False or str(vote).strip().lower() in {
        "down",
        "dislike",
        "disliked",
        "-1",
        "0",
        "false",
        "👎",
    }:
        return "down"
    raise ValueError(f"Unknown vote {vote!r}; use 'up' or 'down'.")


def record_feedback(
    path: str | Path,
    *,
    vote: Any,
    question: str,
    answer: str,
    citations: list[dict[str, Any]] | None = None,
    backend: str = "",
    origin: str = "chat",
    comment: str = "",
    conversation_id: str = "",
    message_id: str = "",
) -> dict[str, Any]:
    """Append one vote to the JSONL file at `path` (folders created) and return the written record."""
    record = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "vote": normalize_vote(vote),
        "question": question,
        "answer": answer,
        "citations": list(citations or []),
        "backend": backend,
        "origin": origin,
    }
    if comment:
        record["comment"] = comment
    if conversation_id:  # the chat page: which conversation and answer the vote is about
        record["conversation_id"] = conversation_id
        record["message_id"] = message_id
    db = _database(path)
    if db is not None:
        db.add_feedback(record)
        return record
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with _LOCK, p.open("a", encoding="utf-8") as fh:
        fh.write(line)
    return record


def read_feedback(path: str | Path) -> list[dict[str, Any]]:
    """All recorded votes (empty when the file does not exist yet)."""
    db = _database(path)
    if db is not None:
        return list(db.feedback())
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def _database(path: str | Path) -> Any:
    """The PostgreSQL store feedback goes to, or None for the JSONL file."""
    url = str(path)
    if not url.startswith(("postgresql://", "postgres://")):
        from rag.config import Config

        config = Config.from_env()
        if config.store != "postgres":
            return None
        url = config.database_url
    return _store(url)


@functools.lru_cache(maxsize=4)
def _store(url: str) -> Any:
    from rag.config import Config
    from rag.retriever import open_config_store

    return open_config_store(Config.from_env({}, store="postgres", database_url=url), must_exist=False)
