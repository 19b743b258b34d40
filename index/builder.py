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
from index.errors import IndexCorruptError, IndexMissingError, UnreadableFileError
from index.loaders import iter_files, load_file
from index.records import Chunk, Document, content_hash
from index.store import IndexStore, write_lock

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
) -> BuildReport:
    """Index `paths` (files and folders) into `index_dir`, re-embedding only what changed.

    The index then holds exactly the readable files under `paths`. Unreadable files are reported in
    `report.failures` and skipped. Raises UnreadableFileError when nothing at all can be read.
    `progress=None` shows a bar only on a terminal.
    Example: build_index(["seeds"], ".rag", load_embedder("")).summary()
    """
    with write_lock(index_dir):
        return _build(
            [Path(p) for p in paths], Path(index_dir), embedder, chunk_tokens, chunk_overlap, progress
        )


def _build(
    paths: list[Path],
    index_dir: Path,
    embedder: Embedder,
    chunk_tokens: int,
    chunk_overlap: int,
    progress: bool | None,
) -> BuildReport:
    t0 = time.perf_counter()
    report = BuildReport(index_dir=str(index_dir))
    # The width is checked too: a model re-published under the same name with another width must
    # rebuild, not reuse (it costs loading the model on a run with nothing to embed).
    old = _previous(index_dir, embedder.name, embedder.dim)
    # the chunker's version is a setting too: a new chunking rule re-chunks (vectors are still reused)
    settings = {"chunk_tokens": chunk_tokens, "chunk_overlap": chunk_overlap, "chunker": CHUNKER_VERSION}
    same_chunking = old is not None and all(old.settings.get(k) == v for k, v in settings.items())

    documents: dict[str, Document] = {}
    for path, root in iter_files(paths, report.failures):
        doc = _reuse_unchanged(old, path, root) if same_chunking else None
        if doc is None:
            try:
                doc = load_file(path, root)
            except UnreadableFileError as err:
                report.failures.append((str(path), str(err).removeprefix(f"{path}: ")))
                continue
        if doc.source in documents:
            report.failures.append((str(path), f"same relative path as another file ({doc.source}); skipped"))
            continue
        documents[doc.source] = doc
    if not documents:
        where = ", ".join(str(p) for p in paths) or "(no paths)"
        detail = "; ".join(f"{p}: {r}" for p, r in report.failures[:3])
        raise UnreadableFileError(
            f"No readable documents in {where}"
            + (f" ({detail})." if detail else ".")
            + " Give `rag index` folders or .txt/.md/.html/.pdf/.docx files."
        )

    old_docs = old.documents if old is not None else {}
    count_tokens = getattr(embedder, "count_tokens", None)
    chunks: list[Chunk] = []
    for source, doc in documents.items():
        prev = old_docs.get(source)
        if prev is None:
            report.docs_added += 1
        elif prev.id != doc.id:
            report.docs_changed += 1
        if same_chunking and old is not None and prev is not None and prev.id == doc.id:
            chunks.extend(c for c in old.chunks if c.source == source)
        else:
            chunks.extend(chunk_document(doc, chunk_tokens, chunk_overlap, count_tokens))
    report.docs_removed = sum(1 for s in old_docs if s not in documents)

    texts = [embed_text(c) for c in chunks]
    keys = [content_hash(t) for t in texts]
    vectors, embedded = _vectors_for(texts, keys, old, embedder, progress)
    unchanged = (
        old is not None
        and same_chunking
        and embedded == 0
        and old.documents == documents
        and [c.id for c in old.chunks] == [c.id for c in chunks]
    )
    if not unchanged:  # nothing to write when nothing changed: the previous index stays as it is
        store = IndexStore(embedder.name, vectors.shape[1], documents, chunks, vectors, settings, keys)
        store.save(index_dir)

    old_ids = {c.id for c in old.chunks} if old is not None else set()
    new_ids = {c.id for c in chunks}
    report.documents, report.chunks = len(documents), len(chunks)
    report.added = embedded
    report.reused = len(chunks) - embedded
    report.removed = len(old_ids - new_ids)
    report.seconds = time.perf_counter() - t0
    return report


def _previous(index_dir: Path, embed_model: str, dim: int | None = None) -> IndexStore | None:
    """The index to update, or None to start afresh (none yet, another model or width, or damaged)."""
    try:
        return IndexStore.load(index_dir, embedder_name=embed_model, dim=dim)
    except IndexMissingError:
        return None
    except IndexCorruptError as err:
        log.warning("Building a new index; the previous one cannot be reused: %s", err)
        return None


def _reuse_unchanged(old: IndexStore | None, path: Path, root: Path) -> Document | None:
    """The stored document when the file's mtime is unchanged and its size matches the stored text."""
    if old is None:
        return None
    try:
        source = path.resolve().relative_to(root.resolve()).as_posix()
        stat = path.stat()
    except (ValueError, OSError):
        return None
    doc = old.document(source)
    if doc is None or doc.path != str(path.resolve()) or doc.mtime != stat.st_mtime:
        return None
    if path.suffix.lower() in (".txt", ".md", ".markdown") and stat.st_size < len(doc.text):
        return None  # cheap sanity check; a text file's bytes are never fewer than its characters
    return doc


def _vectors_for(
    texts: Sequence[str],
    keys: Sequence[str],
    old: IndexStore | None,
    embedder: Embedder,
    progress: bool | None,
) -> tuple[np.ndarray, int]:
    """Vectors for all texts, reusing stored ones by content hash; returns (vectors, number embedded)."""
    known: dict[str, np.ndarray] = {}
    if old is not None:
        for key, row in zip(old.embed_keys, old.vectors, strict=False):
            if key:
                known[key] = row
    todo: dict[str, str] = {}  # key -> text, each distinct text once
    for key, text in zip(keys, texts, strict=True):
        if key not in known and key not in todo:
            todo[key] = text
    fresh = _embed_batches(list(todo.values()), embedder, progress)
    known.update(zip(todo.keys(), fresh, strict=True))
    dim = fresh.shape[1] if len(todo) else (old.dim if old is not None else embedder.dim)
    vectors = (
        np.vstack([known[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, dim), np.float32)
    )
    return vectors, len(todo)


def _embed_batches(
    texts: list[str], embedder: Embedder, progress: bool | None, batch: int = 64
) -> np.ndarray:
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
            if bar is not None:
                bar.update(len(part))
    finally:
        if bar is not None:
            bar.close()
    return np.vstack(parts)
