"""The `Store` Protocol that every index backend satisfies (FAISS files, PostgreSQL + pgvector).

A store holds documents (full text, for the full-document view), their chunks, one vector per chunk and
a manifest (embedding model, dim, chunk settings). It answers dense search (cosine over normalised
vectors) and keyword search (the backend's own full-text ranking); `rag.retriever` fuses the two. The
builder writes through `apply(ChangeSet)`, which is all-or-nothing: a crash mid-write leaves the previous
state queryable. Backends are chosen by name in `index.stores.open_store`.
Leaves out metadata filters and multi-tenant collections.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from index.records import Chunk, Document


@dataclass(frozen=True)
class StoreInfo:
    """The manifest of a store: what it was built with, and how much it holds."""

    embed_model: str
    dim: int
    settings: dict[str, Any]  # chunk_tokens, chunk_overlap, chunker
    documents: int
    chunks: int
    generation: str = ""  # changes on every committed write (for replicas that poll)


@dataclass(frozen=True)
class StoredDocument:
    """What the builder needs to know about a stored document without reading its text."""

    source: str
    id: str  # content hash of the text
    path: str
    mtime: float
    chars: int
    chunk_ids: tuple[str, ...]


@dataclass(frozen=True)
class ChangeSet:
    """One indexing run's changes: documents to add or replace (with all their chunks) and sources to drop.

    `replace_all` empties the store first (another embedding model or a damaged index).
    """

    embed_model: str
    dim: int
    settings: dict[str, Any]
    documents: list[Document] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)  # every chunk of `documents`, in document order
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # row i: chunks[i]
    embed_keys: list[str] = field(default_factory=list)  # content hash of the embedded text, per chunk
    removed: list[str] = field(default_factory=list)  # sources
    replace_all: bool = False

    @property
    def empty(self) -> bool:
        return not (self.documents or self.removed or self.replace_all)


@runtime_checkable
class Store(Protocol):
    """Documents, chunks and vectors, with dense and keyword search. Thread-safe for reading."""

    kind: str  # "faiss", "postgres"

    def info(self) -> StoreInfo | None:
        """The manifest, or None when nothing was ever written."""
        ...

    def document(self, source: str) -> Document | None:
        """The full document, by its source path (for the full-document view)."""
        ...

    def stored_documents(self) -> dict[str, StoredDocument]:
        """Every stored document's id, path, mtime and chunk ids, by source (for incremental indexing)."""
        ...

    def chunks_of(self, source: str) -> list[Chunk]:
        """The chunks of one document, in order."""
        ...

    def known_vectors(self, embed_keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by embed key, for the stored keys (so unchanged text is not embedded again)."""
        ...

    def writer(self) -> AbstractContextManager[None]:
        """Held by `build_index` around read-modify-write: one writer at a time, reading the latest state."""
        ...

    def apply(self, changes: ChangeSet) -> None:
        """Write one indexing run atomically."""
        ...

    def search_dense(self, query_vec: np.ndarray, k: int) -> list[tuple[Chunk, float]]:
        """The k chunks nearest to a normalised query vector, with their cosine, best first."""
        ...

    def search_keyword(self, query: str, k: int) -> list[tuple[Chunk, float]]:
        """The k best full-text matches (score > 0), best first; scores are the backend's own."""
        ...

    def similarities(self, query_vec: np.ndarray, chunk_ids: Sequence[str]) -> np.ndarray:
        """The cosine of the query with each of the given chunks, in that order."""
        ...

    def refresh(self) -> bool:
        """Pick up writes by other processes; True when something changed. Cheap when nothing did."""
        ...

    def close(self) -> None: ...
