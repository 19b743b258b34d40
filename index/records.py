"""Typed records passed between stages. Ids are content hashes, so a rebuilt index keeps citations stable."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def content_hash(*parts: str, length: int = 16) -> str:
    """Stable short hex id of some text. Example: content_hash("a") -> 'ca978112ca1bbdca'."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:length]


@dataclass(frozen=True)
class Document:
    """One loaded file. `text` is the decoded text that all chunk offsets point into."""

    id: str  # content hash of `text`
    source: str  # path relative to the indexed folder, e.g. "000_cd01c28a230eedd7.txt"
    title: str
    text: str
    path: str = ""  # absolute path on disk, for re-reading
    mtime: float = 0.0


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: `text == document.text[start:end]`."""

    id: str  # content hash of (source, text, start)
    doc_id: str
    source: str
    title: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and the scores that made it."""

    chunk: Chunk
    score: float
    rank: int = 0
    scores: dict[str, float] = field(default_factory=dict, compare=False)  # e.g. {"dense": .52, "bm25": 7.1}
