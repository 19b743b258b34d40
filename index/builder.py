"""Incremental index building: load, chunk, embed only what is new, save atomically.

A re-run compares each file with the stored index: files whose size and mtime are unchanged are not even
re-read; changed files are re-chunked; chunks whose embedded text was embedded before (same content hash)
reuse the stored vector, so identical content is never embedded twice; files that are gone are dropped.
Changing the chunk settings re-chunks everything but still reuses vectors where the text is the same.
Changing the embedding model re-embeds everything. Leaves out watching folders for changes.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.chunker import CHUNKER_VERSION, chunk_document, embed_text
from index.embedder import Embedder
from index.errors import UnreadableFileError
from index.loaders import READER_VERSION, iter_files, load_file
from index.records import Chunk, Document, content_hash
from index.store_api import ChangeSet, Store, StoredDocument
from index.store_stash import EmbedStash

log = logging.getLogger(__name__)


@dataclass
class BuildReport:
    """What one `build_index` run did."""

    documents: int = 0
    chunks: int = 0
    added: int = 0  # chunks embedded in this run
    removed: int = 0  # chunks of the previous index that are gone
    reused: int = 0  # chunks whose vectors came from the previous index
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    docs_added: int = 0
    docs_changed: int = 0
    docs_removed: int = 0
    index_dir: str = ""

    def summary(self) -> str:
        """E.g. 'Indexed 5 documents, 38 chunks (added 38, removed 0, reused 0) in 9.1 s; 0 failures.'"""
        return (
            f"Indexed {self.documents} documents, {self.chunks} chunks (added {self.added}, "
            f"removed {self.removed}, reused {self.reused}) in {self.seconds:.1f} s; "
            f"{len(self.failures)} failures."
        )


def build_index(
    paths: Iterable[str | Path],
    index_dir: str | Path,
    embedder: Embedder,
    *,
    chunk_tokens: int = 200,
    chunk_overlap: int = 40,
    progress: bool | None = None,
    store: Store | None = None,
) -> BuildReport:
    """Index `paths` (files and folders) into `store` (default: the FAISS folder `index_dir`).

    Only what changed is re-read, re-chunked and re-embedded; the store then holds exactly the readable
    files under `paths`. Unreadable files are reported in `report.failures` and skipped. Raises
    UnreadableFileError when nothing at all can be read. `progress=None` shows a bar only on a terminal.
    Example: build_index(["seeds"], ".rag", load_embedder("")).summary()
    """
    if store is None:
        from index.store_faiss import FaissStore

        store = FaissStore(index_dir, must_exist=False)
    with store.writer():
        return _build(
            [Path(p) for p in paths], store, embedder, chunk_tokens, chunk_overlap, progress, str(index_dir)
        )


def _build(
    paths: list[Path],
    store: Store,
    embedder: Embedder,
    chunk_tokens: int,
    chunk_overlap: int,
    progress: bool | None,
    where: str,
) -> BuildReport:
    t0 = time.perf_counter()
    report = BuildReport(index_dir=where)
    info = store.info()
    # The width is checked too: a model re-published under the same name with another width must
    # rebuild, not reuse (it costs loading the model on a run with nothing to embed).
    fresh = info is None or info.embed_model != embedder.name or info.dim != embedder.dim
    if info is not None and fresh:
        log.warning(
            "Re-embedding everything: the index was built with %r (dim %d), now %r (dim %d).",
            info.embed_model, info.dim, embedder.name, embedder.dim,
        )
    # the chunker's and the readers' versions are settings too: a new chunking rule re-chunks and a new
    # reading rule re-reads every file (vectors of unchanged chunk texts are still reused)
    settings = {"chunk_tokens": chunk_tokens, "chunk_overlap": chunk_overlap, "chunker": CHUNKER_VERSION,
                "reader": READER_VERSION}
    same_chunking = (
        info is not None and not fresh and all(info.settings.get(k) == v for k, v in settings.items())
    )
    stored = {} if fresh else store.stored_documents()

    kept: dict[str, StoredDocument] = {}  # unchanged files: not even re-read
    loaded: dict[str, Document] = {}
    for path, root in iter_files(paths, report.failures):
        meta = _unchanged(stored, path, root) if same_chunking else None
        source = meta.source if meta is not None else None
        doc = None
        if meta is None:
            try:
                doc = load_file(path, root)
            except UnreadableFileError as err:
                report.failures.append((str(path), str(err).removeprefix(f"{path}: ")))
                continue
            source = doc.source
        assert source is not None
        if source in kept or source in loaded:
            report.failures.append((str(path), f"same relative path as another file ({source}); skipped"))
            continue
        if meta is not None:
            kept[source] = meta
        elif doc is not None:
            loaded[source] = doc
    if not kept and not loaded:
        where_ = ", ".join(str(p) for p in paths) or "(no paths)"
        detail = "; ".join(f"{p}: {r}" for p, r in report.failures[:3])
        raise UnreadableFileError(
            f"No readable documents in {where_}"
            + (f" ({detail})." if detail else ".")
            + " Give `rag index` folders or .txt/.md/.html/.pdf/.docx files."
        )

    count_tokens = getattr(embedder, "count_tokens", None)
    chunks: list[Chunk] = []
    for source, doc in loaded.items():
        prev = stored.get(source)
        if prev is None:
            report.docs_added += 1
        elif prev.id != doc.id:
            report.docs_changed += 1
        if same_chunking and prev is not None and prev.id == doc.id:
            chunks.extend(store.chunks_of(source))  # touched but unchanged: same chunks, same vectors
        else:
            chunks.extend(chunk_document(doc, chunk_tokens, chunk_overlap, count_tokens))
    removed = [s for s in stored if s not in kept and s not in loaded]
    report.docs_removed = len(removed)

    texts = [embed_text(c) for c in chunks]
    keys = [content_hash(t) for t in texts]
    known = store.known_vectors(keys) if not fresh and keys else {}
    stash = EmbedStash(where, embedder.name) if where else None  # vectors of a run that crashed
    if stash is not None and keys:
        known.update(stash.load(set(keys) - set(known)))
    dim = info.dim if info is not None and not fresh else embedder.dim
    vectors, embedded = _vectors_for(texts, keys, known, dim, embedder, progress, stash)
    changes = ChangeSet(
        embed_model=embedder.name,
        dim=vectors.shape[1] if len(vectors) else dim,
        settings=settings,
        documents=list(loaded.values()),
        chunks=chunks,
        vectors=vectors,
        embed_keys=keys,
        removed=removed,
        replace_all=fresh,
    )
    if not changes.empty or not same_chunking:  # nothing changed: the previous index stays as it is
        store.apply(changes)
    if stash is not None:
        stash.clear()  # committed: nothing left to resume

    new_ids = {c.id for c in chunks}
    gone = [i for s in (*removed, *loaded) if s in stored for i in stored[s].chunk_ids]
    report.documents = len(kept) + len(loaded)
    report.chunks = sum(len(m.chunk_ids) for m in kept.values()) + len(chunks)
    report.added = embedded
    report.reused = report.chunks - embedded
    report.removed = sum(1 for i in set(gone) if i not in new_ids)
    report.seconds = time.perf_counter() - t0
    return report


def _unchanged(stored: dict[str, StoredDocument], path: Path, root: Path) -> StoredDocument | None:
    """The stored document when the file's mtime is unchanged and its size matches the stored text."""
    try:
        source = path.resolve().relative_to(root.resolve()).as_posix()
        stat = path.stat()
    except (ValueError, OSError):
        return None
    doc = stored.get(source)
    if doc is None or doc.path != str(path.resolve()) or doc.mtime != stat.st_mtime:
        return None
    if path.suffix.lower() in (".txt", ".md", ".markdown") and stat.st_size < doc.chars:
        return None  # cheap sanity check; a text file's bytes are never fewer than its characters
    return doc


def _vectors_for(
    texts: Sequence[str],
    keys: Sequence[str],
    known: dict[str, np.ndarray],
    dim: int,
    embedder: Embedder,
    progress: bool | None,
    stash: EmbedStash | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for all texts, reusing stored ones by content hash; returns (vectors, number embedded)."""
    known = dict(known)
    todo: dict[str, str] = {}  # key -> text, each distinct text once
    for key, text in zip(keys, texts, strict=True):
        if key not in known and key not in todo:
            todo[key] = text
    fresh = _embed_batches(list(todo.values()), embedder, progress, list(todo), stash)
    known.update(zip(todo.keys(), fresh, strict=True))
    if len(todo):
        dim = fresh.shape[1]
    vectors = (
        np.vstack([known[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, dim), np.float32)
    )
    return vectors, len(todo)


def _embed_batches(
    texts: list[str],
    embedder: Embedder,
    progress: bool | None,
    keys: list[str] | None = None,
    stash: EmbedStash | None = None,
    batch: int = 64,
) -> np.ndarray:
    batch = int(getattr(embedder, "preferred_batch", batch))  # a remote embedder sends several at once
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    show = sys.stderr.isatty() if progress is None else progress
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=len(texts), desc="Embedding", unit="chunk", file=sys.stderr, leave=False)
    parts = []
    try:
        for i in range(0, len(texts), batch):
            part = embedder.embed(texts[i : i + batch])
            parts.append(np.asarray(part, dtype=np.float32))
            if stash is not None and keys is not None:
                stash.add(keys[i : i + batch], parts[-1])
            if bar is not None:
                bar.update(len(part))
    finally:
        if bar is not None:
            bar.close()
    return np.vstack(parts)
