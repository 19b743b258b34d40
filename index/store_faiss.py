"""The zero-configuration `Store`: an index folder (FAISS + JSON docstore + manifest, see `index.store`).

`FaissStore(index_dir)` serves searches from memory: FAISS for dense, bm25s for keywords (the same
tokens and text as before the Store split, so results are unchanged). Writes (`apply`) merge a ChangeSet
into the loaded state and save a new version atomically; `writer()` holds the folder's lock across the
read-modify-write. `refresh()` reloads when another process committed a new manifest (checked at most once
per `check_every` seconds, by a `stat` of manifest.json), so a running server sees a re-index without a
restart. Leaves out memory-mapping the vectors (they are read into RAM).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.chunk_table import ChunkTable, chunk_ids, chunk_sources
from index.errors import IndexCorruptError, IndexMissingError
from index.records import Chunk, Document
from index.store import MANIFEST, IndexStore, write_lock
from index.store_api import ChangeSet, StoredDocument, StoreInfo
from index.tokens import keyword_tokens

log = logging.getLogger(__name__)


@dataclass
class _View:
    """One loaded version: searches read `self._view` once, so a concurrent reload never mixes versions."""

    state: IndexStore
    stamp: tuple[int, int, int]
    bm25: Any = None
    bm25_ready: bool = False


class FaissStore:
    """`Store` over an index folder. Raises IndexMissingError/IndexCorruptError (naming the fix) on open."""

    kind = "faiss"

    def __init__(
        self,
        index_dir: str | Path,
        embedder_name: str | None = None,
        dim: int | None = None,
        *,
        must_exist: bool = True,
        check_every: float = 1.0,
        ann_threshold: int = 200_000,
    ) -> None:
        self.path = Path(index_dir)
        self.ann_threshold = ann_threshold
        self.embedder_name = embedder_name
        self.expected_dim = dim
        self.check_every = check_every
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._view: _View | None = None
        if must_exist:
            self._view = self._load(embedder_name, dim)

    @classmethod
    def from_state(cls, state: IndexStore) -> FaissStore:
        """A store over an in-memory `IndexStore` (tests, benchmarks); `refresh` reloads from `state.path`."""
        store = cls(state.path or Path("."), must_exist=False)
        store._view = _View(state, _stamp(store.path) if state.path else (0, 0, 0))
        if state.path is None:
            store.check_every = float("inf")
        return store

    # --- reading

    @property
    def state(self) -> IndexStore | None:
        """The loaded `IndexStore` (documents, chunks, vectors), or None before the first write."""
        return self._view.state if self._view is not None else None

    @property
    def documents(self) -> dict[str, Document]:
        return self._view.state.documents if self._view is not None else {}

    @property
    def chunks(self) -> Sequence[Chunk]:
        return self._view.state.chunks if self._view is not None else []

    def info(self) -> StoreInfo | None:
        if self._view is None:
            return None
        s = self._view.state
        return StoreInfo(
            s.embed_model,
            s.dim,
            dict(s.settings),
            len(s.documents),
            len(s.chunks),
            str(s.manifest.get("data", "")),
        )

    def document(self, source: str) -> Document | None:
        return self._view.state.document(source) if self._view is not None else None

    def stored_documents(self) -> dict[str, StoredDocument]:
        if self._view is None:
            return {}
        s = self._view.state
        ids: dict[str, list[str]] = {}
        for cid, source in zip(chunk_ids(s.chunks), chunk_sources(s.chunks), strict=True):
            ids.setdefault(source, []).append(cid)
        return {
            d.source: StoredDocument(
                d.source, d.id, d.path, d.mtime, len(d.text), tuple(ids.get(d.source, ()))
            )
            for d in s.documents.values()
        }

    def chunks_of(self, source: str) -> list[Chunk]:
        chunks = self.chunks
        if isinstance(chunks, ChunkTable):
            return [chunks[i] for i in chunks.rows_of(source)]
        return [c for c in chunks if c.source == source]

    def known_vectors(self, embed_keys: Sequence[str]) -> dict[str, np.ndarray]:
        if self._view is None:
            return {}
        s = self._view.state
        wanted = set(embed_keys)
        return {k: row for k, row in zip(s.embed_keys, s.vectors, strict=False) if k and k in wanted}

    def search_dense(self, query_vec: np.ndarray, k: int) -> list[tuple[Chunk, float]]:
        if self._view is None:
            return []
        s = self._view.state
        return [(s.chunks[row], score) for row, score in s.search_dense(query_vec, k)]

    def search_keyword(self, query: str, k: int) -> list[tuple[Chunk, float]]:
        view = self._view
        tokens = keyword_tokens(query)
        if view is None or not tokens or k <= 0:
            return []
        bm25 = self._bm25(view)
        if bm25 is None:
            return []
        scores = bm25.get_scores(tokens)
        n = min(k, len(scores))
        top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(view.state.chunks[int(i)], float(scores[i])) for i in top if scores[i] > 0]

    def similarities(self, query_vec: np.ndarray, chunk_ids: Sequence[str]) -> np.ndarray:
        if self._view is None or not chunk_ids:
            return np.zeros(0, dtype=np.float32)
        s = self._view.state
        rows = [s._by_id[c] for c in chunk_ids]
        return np.asarray(s.vectors[rows] @ query_vec, dtype=np.float32)

    def refresh(self) -> bool:
        """Reload when manifest.json changed since it was loaded; at most one `stat` per `check_every` s."""
        now = time.monotonic()
        if now - self._checked < self.check_every:
            return False
        self._checked = now
        stamp = _stamp(self.path)
        if self._view is not None and stamp == self._view.stamp:
            return False
        with self._lock:
            if self._view is not None and _stamp(self.path) == self._view.stamp:
                return False
            try:
                self._view = self._load(self.embedder_name, self.expected_dim)
            except (IndexMissingError, IndexCorruptError) as err:
                log.warning("Keeping the loaded index; the new one cannot be read: %s", err)
                return False
        return True

    def close(self) -> None:
        self._view = None

    def _bm25(self, view: _View) -> Any:
        if not view.bm25_ready:
            with self._lock:
                if not view.bm25_ready:
                    view.bm25 = view.state.keyword_index()
                    view.bm25_ready = True
        return view.bm25

    def _load(self, embedder_name: str | None, dim: int | None) -> _View:
        stamp = _stamp(self.path)
        state = IndexStore.load(self.path, embedder_name=embedder_name, dim=dim)
        return _View(state, stamp)

    # --- writing

    @contextmanager
    def writer(self) -> Iterator[None]:
        """Hold the folder's write lock and read the current version (a damaged one counts as empty)."""
        with write_lock(self.path):
            try:
                self._view = self._load(None, None)
            except IndexMissingError:
                self._view = None
            except IndexCorruptError as err:
                log.warning("Building a new index; the previous one cannot be reused: %s", err)
                self._view = None
            yield

    def apply(self, changes: ChangeSet) -> None:
        old = None if changes.replace_all or self._view is None else self._view.state
        removed = set(changes.removed)
        documents = {s: d for s, d in (old.documents.items() if old else ()) if s not in removed}
        for d in changes.documents:
            documents[d.source] = d  # a replaced document keeps its place, a new one goes last
        n_old = len(old.chunks) if old else 0
        rows: dict[str, list[int]] = {}
        for i, source in enumerate(chunk_sources(old.chunks) if old else ()):
            rows.setdefault(source, []).append(i)
        fresh: dict[str, list[int]] = {}
        for i, c in enumerate(changes.chunks):
            fresh.setdefault(c.source, []).append(n_old + i)
        order = [i for s in documents for i in (fresh[s] if s in fresh else rows.get(s, []))]
        all_chunks = (list(old.chunks) if old else []) + list(changes.chunks)
        keys = (old._keys() if old else []) + list(changes.embed_keys)
        parts = [v for v in (old.vectors if old else None, changes.vectors) if v is not None and len(v)]
        # No copy where none is needed (a first build or a rebuild, rows in order): at a million chunks each
        # copy of the vectors is 1.5 GB of peak memory. The old state's vectors may be a view of its FAISS
        # index, so they are always copied.
        if len(parts) == 1 and parts[0] is changes.vectors:
            stacked = np.asarray(parts[0], dtype=np.float32)
        else:
            stacked = np.vstack(parts).astype(np.float32) if parts else np.zeros((0, changes.dim), np.float32)
        if not order:
            vectors = np.zeros((0, changes.dim), np.float32)
        elif len(order) == len(stacked) and all(i == j for j, i in enumerate(order)):
            vectors = stacked
        else:
            vectors = stacked[order]
        state = IndexStore(
            changes.embed_model,
            changes.dim,
            documents,
            [all_chunks[i] for i in order],
            vectors,
            dict(changes.settings),
            [keys[i] for i in order],
            ann_threshold=self.ann_threshold,
        )
        state.save(self.path)
        self._view = _View(state, _stamp(self.path))


def _stamp(index_dir: Path) -> tuple[int, int, int]:
    """(inode, mtime ns, size) of manifest.json: a commit replaces the file, so any of them changes."""
    try:
        st = (index_dir / MANIFEST).stat()
    except OSError:
        return (0, 0, 0)
    return (st.st_ino, st.st_mtime_ns, st.st_size)
