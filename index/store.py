"""The index on disk: a FAISS index, a JSON docstore and a manifest. No pickle anywhere.

Layout of an index folder (default `.rag/`):
    manifest.json          the commit point: model, dim, chunk settings, counts, created, data folder, sha256s
    data-<stamp>/index.faiss   FAISS `IndexIDMap2(IndexFlatIP)` of normalised vectors (FAISS's own format)
    data-<stamp>/docstore.json documents (full text, for the UI) and chunk columns (id, document, offsets)
    data-<stamp>/bm25-*        the keyword index (bm25s's save format), checksummed in `bm25_sha256`
`save` writes a new data folder, then atomically replaces manifest.json, then deletes old data folders:
a crash or Ctrl-C at any point leaves the previous index loadable. Loading checks the sha256s, the model
and the dimension, and raises `IndexCorruptError` / `IndexMissingError` naming the fix.
Writers take a lock file, so two `rag index` runs on one folder take turns; a reader that loses the race
with a writer's clean-up retries once. From `ann_threshold` chunks (RAG_ANN_THRESHOLD) the FAISS index is
HNSW instead of exact. The BM25 index is saved too (`bm25-*`, bm25s's own .npy + JSON format) and loaded
memory-mapped, so start-up neither re-tokenises the corpus nor holds BM25 in RAM twice. Loaded chunks are a
`ChunkTable` (index.chunk_table): columns, each chunk made with its text when read.
Leaves out non-POSIX locking.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.chunk_table import ChunkTable, chunk_ids, chunk_offsets, chunk_sources
from index.errors import IndexCorruptError, IndexMissingError
from index.records import Chunk, Document
from index.tokens import keyword_tokens

FORMAT_VERSION = 1
DOCSTORE_FORMAT = 2  # chunk columns; 1 (one object per chunk) is still read
MANIFEST = "manifest.json"
FAISS_FILE = "index.faiss"
DOCSTORE_FILE = "docstore.json"
_REBUILD = "Rebuild it with `rag index`."
BM25_PREFIX = "bm25-"
BM25_FILES = {  # bm25s's save/load file names, flat in the data folder
    f"{part}_name": f"{BM25_PREFIX}{name}"
    for part, name in [
        ("data", "data.npy"),
        ("indices", "indices.npy"),
        ("indptr", "indptr.npy"),
        ("vocab", "vocab.json"),
        ("params", "params.json"),
        ("nnoc", "nonoccurrence.npy"),
        ("corpus", "corpus.jsonl"),
    ]
}
ANN_THRESHOLD = 200_000  # default of RAG_ANN_THRESHOLD
HNSW_M = 32  # neighbours per node
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128  # measured: recall@10 >= 0.95 on clustered 384-d vectors (scripts/bench_store.py)
_SINGLE_THREAD_BELOW = 200_000  # vectors; above this a flat search is worth sharing between cores


def faiss_id(chunk_id: str) -> int:
    """The int64 FAISS id of a chunk (60 bits of its hex id). Example: faiss_id("000000000000000f") -> 0."""
    return int(chunk_id[:15], 16)


@dataclass
class IndexStore:
    """Documents, chunks and their vectors, as loaded from (or about to be saved to) an index folder."""

    embed_model: str
    dim: int
    documents: dict[str, Document]  # by source
    chunks: Sequence[Chunk]  # a list, or the ChunkTable of a loaded index
    vectors: np.ndarray  # float32 (len(chunks), dim), row i belongs to chunks[i]
    settings: dict[str, Any] = field(default_factory=dict)  # chunk_tokens, chunk_overlap, ...
    embed_keys: list[str] = field(default_factory=list)  # content hash of the embedded text, per chunk
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    ann_threshold: int = ANN_THRESHOLD  # chunks from which the FAISS index is HNSW instead of exact

    def __post_init__(self) -> None:
        self._by_id = {cid: i for i, cid in enumerate(chunk_ids(self.chunks))}
        self._faiss: Any = None
        self._rows: dict[int, int] | None = None
        self._bm25: Any = None
        self._bm25_dir: Path | None = None  # a saved bm25s index to load instead of re-tokenising

    def document(self, source: str) -> Document | None:
        """The full document a chunk came from, by its source path."""
        return self.documents.get(source)

    def chunk(self, chunk_id: str) -> Chunk | None:
        i = self._by_id.get(chunk_id)
        return None if i is None else self.chunks[i]

    def vector(self, chunk_id: str) -> np.ndarray | None:
        i = self._by_id.get(chunk_id)
        return None if i is None else self.vectors[i]

    @property
    def faiss_index(self) -> Any:
        """`IndexIDMap2(IndexFlatIP)` over the vectors; ids are `faiss_id(chunk.id)`."""
        if self._faiss is None:
            self._faiss = build_faiss(
                self.vectors,
                chunk_ids(self.chunks),
                self.dim,
                ann=len(self.chunks) >= self.ann_threshold,
            )
        return self._faiss

    @staticmethod
    def _single_thread_search() -> None:
        """One query against a small flat index is microseconds of work; an OpenMP team to share it out
        costs more than that, and milliseconds when the cores are busy (measured: 0.03 ms -> 8 ms)."""
        import faiss

        faiss.omp_set_num_threads(1)

    def search_dense(self, query_vec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(row in `chunks`, cosine) of the k nearest chunks."""
        if not self.chunks or k <= 0:
            return []
        if len(self.chunks) < _SINGLE_THREAD_BELOW:
            self._single_thread_search()
        scores, ids = self.faiss_index.search(
            query_vec.reshape(1, -1).astype(np.float32), min(k, len(self.chunks))
        )
        rows = self._rows_by_faiss_id()
        return [(rows[int(i)], float(s)) for s, i in zip(scores[0], ids[0], strict=True) if int(i) in rows]

    def keyword_index(self) -> Any:
        """A bm25s index over the chunks (title + text), row i = chunks[i]; None when there are no chunks."""
        if self._bm25 is None and self.chunks:
            if self._bm25_dir is not None:
                self._bm25 = load_bm25(self._bm25_dir, len(self.chunks))
            else:
                self._bm25 = build_bm25(
                    [c.text if not c.title else f"{c.title}\n{c.text}" for c in self.chunks]
                )
        return self._bm25

    def _rows_by_faiss_id(self) -> dict[int, int]:
        if self._rows is None:
            self._rows = {faiss_id(cid): i for i, cid in enumerate(chunk_ids(self.chunks))}
        return self._rows

    # --- persistence

    def save(self, index_dir: str | Path) -> Path:
        """Write atomically into `index_dir`; returns the manifest path."""
        index_dir = Path(index_dir)
        index_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=index_dir))
        try:
            import faiss

            faiss.write_index(self.faiss_index, str(tmp / FAISS_FILE))
            bm25 = self.keyword_index()
            if bm25 is not None:  # bm25s's own format (.npy without pickle + JSON)
                bm25.save(str(tmp), show_progress=False, **BM25_FILES)
            _write_json(tmp / DOCSTORE_FILE, self._docstore(), compact=True)
            _fsync_dir(tmp)
            data_name = f"data-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{tmp.name[-6:]}"
            os.replace(tmp, index_dir / data_name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        manifest = {
            "format": FORMAT_VERSION,
            "embed_model": self.embed_model,
            "dim": self.dim,
            **self.settings,
            "documents": len(self.documents),
            "chunks": len(self.chunks),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "data": data_name,
            "sha256": {name: _sha256(index_dir / data_name / name) for name in (FAISS_FILE, DOCSTORE_FILE)},
            # the saved BM25 (optional: an index without it rebuilds BM25 in memory)
            "bm25_sha256": {
                name: _sha256(index_dir / data_name / name)
                for name in _data_files(index_dir / data_name)
                if name.startswith(BM25_PREFIX)
            },
            "faiss_index": "hnsw" if len(self.chunks) >= self.ann_threshold else "flat",
        }
        _write_json(index_dir / (MANIFEST + ".tmp"), manifest)
        os.replace(index_dir / (MANIFEST + ".tmp"), index_dir / MANIFEST)  # the commit point
        _fsync_dir(index_dir)
        self.manifest, self.path = manifest, index_dir
        remove_stale(index_dir, keep=data_name)
        return index_dir / MANIFEST

    def _docstore(self) -> dict[str, Any]:
        """The docstore as columns (DOCSTORE_FORMAT 2): one list per chunk field instead of one object per
        chunk, which parses about twice as fast at a million chunks and needs no per-chunk dict.
        A chunk names its document by position in `documents`; its doc_id and title are the document's."""
        docs = sorted(self.documents.values(), key=lambda d: d.source)
        position = {d.source: k for k, d in enumerate(docs)}
        starts, ends = chunk_offsets(self.chunks)
        return {
            "format": DOCSTORE_FORMAT,
            "documents": [asdict(d) for d in docs],
            "chunks": {
                "id": chunk_ids(self.chunks),
                "doc": [position[s] for s in chunk_sources(self.chunks)],
                "start": starts,
                "end": ends,
                "embed_key": self._keys(),
            },
        }

    def _keys(self) -> list[str]:
        return self.embed_keys if len(self.embed_keys) == len(self.chunks) else [""] * len(self.chunks)

    @classmethod
    def load(
        cls, index_dir: str | Path, embedder_name: str | None = None, dim: int | None = None
    ) -> IndexStore:
        """Load and verify an index. `embedder_name`/`dim`, when given, must match what it was built with."""
        try:
            try:
                return cls._load(Path(index_dir), embedder_name, dim)
            except IndexCorruptError:
                # A `rag index` may have committed a new version (and removed the old data) while we read:
                # then the manifest has changed and one more try reads the new version.
                if not (Path(index_dir) / MANIFEST).exists():
                    raise
                return cls._load(Path(index_dir), embedder_name, dim)
        except (AttributeError, TypeError, ValueError, KeyError, IndexError, RuntimeError) as err:
            # A field of the wrong type or shape anywhere in the files (hand-edited, fuzzed): one line.
            raise IndexCorruptError(
                f"The index at {index_dir} cannot be read ({type(err).__name__}: {str(err)[:120]}). "
                + _REBUILD
            ) from err

    @classmethod
    def _load(cls, index_dir: Path, embedder_name: str | None, dim: int | None) -> IndexStore:
        manifest = read_manifest(index_dir)
        check_compatible(manifest, index_dir, embedder_name, dim)
        data = index_dir / str(manifest.get("data", ""))
        sums = {**manifest.get("bm25_sha256", {}), **manifest.get("sha256", {})}
        files = [FAISS_FILE, DOCSTORE_FILE, *manifest.get("bm25_sha256", {})]
        for name in files:
            expected = sums.get(name)
            try:
                actual = _sha256(data / name)
            except OSError as err:
                raise IndexCorruptError(
                    f"The index at {index_dir} is incomplete ({name}: {err.strerror}). {_REBUILD}"
                ) from err
            if actual != expected:
                raise IndexCorruptError(
                    f"The index at {index_dir} is damaged ({name} fails its checksum). {_REBUILD}"
                )
        try:
            import faiss

            # bytes, not text: json decodes UTF-8 itself, and a text read of a large docstore was 3 s of
            # newline translation at 300k chunks
            chunks, keys = _read_docstore(json.loads((data / DOCSTORE_FILE).read_bytes()))
            documents = {d.source: d for d in chunks.docs}
            index = faiss.read_index(str(data / FAISS_FILE))
            vectors = _vectors_in_order(index, chunks.ids)
        except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as err:
            raise IndexCorruptError(
                f"The index at {index_dir} cannot be read ({type(err).__name__}: {err}). {_REBUILD}"
            ) from err
        if index.d != manifest["dim"]:
            raise IndexCorruptError(
                f"The index at {index_dir} has vectors of width {index.d}, "
                f"its manifest says {manifest['dim']}. {_REBUILD}"
            )
        keep = ("chunk_tokens", "chunk_overlap", "chunker", "reader")
        settings: dict[str, Any] = {k: manifest[k] for k in keep if k in manifest}
        store = cls(
            manifest["embed_model"],
            int(manifest["dim"]),
            documents,
            chunks,
            vectors,
            settings,
            keys,
            manifest,
            index_dir,
        )
        store._faiss = index
        _tune(index)
        if any(n.startswith(BM25_PREFIX) for n in files):
            store._bm25_dir = data
            try:  # at load, not at the first search: damage must end here, in one clear error
                store.keyword_index()
            except (ValueError, KeyError, TypeError, IndexError, AttributeError, OSError, EOFError) as err:
                raise IndexCorruptError(
                    f"The index at {index_dir} has a damaged keyword index ({type(err).__name__}: "
                    f"{str(err)[:120]}). {_REBUILD}"
                ) from err
        return store


@contextmanager
def write_lock(index_dir: str | Path) -> Iterator[None]:
    """One writer at a time per index folder (a second `rag index` waits for the first)."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as f:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, the last writer wins
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_manifest(index_dir: str | Path) -> dict[str, Any]:
    """The manifest of an index folder; IndexMissingError when there is none."""
    path = Path(index_dir) / MANIFEST
    if not path.exists():
        raise IndexMissingError(f"No index at {index_dir}. Run `rag index` first.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise IndexCorruptError(f"The index manifest {path} cannot be read ({err}). {_REBUILD}") from err
    needed = ("format", "embed_model", "dim", "data", "sha256")
    if not isinstance(manifest, dict) or any(k not in manifest for k in needed):
        raise IndexCorruptError(f"The index manifest {path} is incomplete. {_REBUILD}")
    if manifest["format"] != FORMAT_VERSION:
        raise IndexCorruptError(
            f"The index at {index_dir} has format {manifest['format']}, this version reads "
            f"{FORMAT_VERSION}. {_REBUILD}"
        )
    return manifest


def check_compatible(
    manifest: dict[str, Any], index_dir: Path, embedder_name: str | None, dim: int | None
) -> None:
    built = manifest["embed_model"]
    if embedder_name is not None and built != embedder_name:
        raise IndexCorruptError(
            f"The index at {index_dir} was built with embedding model {built!r}, now {embedder_name!r}: "
            f"set RAG_EMBED_MODEL={built} or rebuild it with `rag index`."
        )
    if dim is not None and int(manifest["dim"]) != dim:
        raise IndexCorruptError(
            f"The index at {index_dir} holds {manifest['dim']}-d vectors, the model makes "
            f"{dim}-d ones. {_REBUILD}"
        )


def build_faiss(vectors: np.ndarray, chunk_ids: Sequence[str], dim: int, ann: bool = False) -> Any:
    """`IndexIDMap2` over exact inner product, or over HNSW (`ann`) for large indexes.

    HNSW rather than IVF: no training pass, and recall stays high as documents are added and removed.
    """
    import faiss

    inner: Any
    if ann:
        inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        inner = faiss.IndexFlatIP(dim)
    index = faiss.IndexIDMap2(inner)
    if len(chunk_ids):
        ids = np.array([faiss_id(c) for c in chunk_ids], dtype=np.int64)
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    _tune(index)
    return index


def _tune(index: Any) -> None:
    """Search-time setting of an HNSW index (efSearch): the recall/latency trade-off, see docs/scaling.md."""
    import faiss

    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else None
    if inner is not None and hasattr(inner, "hnsw"):
        inner.hnsw.efSearch = HNSW_EF_SEARCH


def _data_files(data: Path) -> list[str]:
    """The files of a data folder that the manifest checksums (relative names)."""
    return sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())


def build_bm25(texts: list[str]) -> Any:
    """bm25s over our keyword tokens; None for no texts."""
    if not texts:
        return None
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.ERROR)
    bm25 = bm25s.BM25()
    bm25.index(token_ids(texts), show_progress=False)
    return bm25


def load_bm25(data: Path, n_chunks: int) -> Any:
    """The saved bm25s index of a data folder, memory-mapped (a large index starts without reading or
    re-tokenising the corpus), checked against the chunk count; ValueError when its arrays do not fit
    together (files that pass their checksums may still have been written by something else)."""
    import bm25s

    bm25 = bm25s.BM25.load(str(data), mmap=True, show_progress=False, **BM25_FILES)
    scores = bm25.scores
    indptr, indices, values = scores["indptr"], scores["indices"], scores["data"]
    if int(scores["num_docs"]) != n_chunks:
        raise ValueError(f"{scores['num_docs']} keyword rows for {n_chunks} chunks")
    if not isinstance(bm25.vocab_dict, dict) or indptr.ndim != 1 or len(indptr) < 1:
        raise ValueError("the keyword vocabulary does not match its postings")
    # one column of postings per token; bm25s keeps an extra "" in the vocabulary that has none (and that
    # our tokenizer never asks for)
    columns = len(indptr) - 1
    if not all(type(i) is int and 0 <= i < columns for t, i in bm25.vocab_dict.items() if t):
        raise ValueError("the keyword vocabulary holds an id outside its postings")
    if indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu" or len(indices) != len(values):
        raise ValueError("the keyword postings are not integer arrays of one length")
    if int(indptr[0]) != 0 or int(indptr[-1]) != len(indices) or (np.diff(indptr) < 0).any():
        raise ValueError("the keyword postings' offsets are out of order")
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= n_chunks):
        raise ValueError("a keyword posting points at no chunk")
    return bm25


def token_ids(texts: Iterable[str]) -> tuple[list[np.ndarray], dict[str, int]]:
    """Each text's keyword tokens as an int32 array of vocabulary ids, and the vocabulary (token -> id).

    bm25s accepts this `(ids, vocab)` pair in place of lists of token strings and builds the same index
    from it. Its string path keeps every token of the corpus as a Python string in a list until the index
    is built, about 4x the memory (scripts/bench_store.py --sections bm25: +737 MB against +176 MB at 50k
    synthetic chunks, the same scores); at a million chunks that was the difference between a build that
    fits on the machine and one that does not. An empty token list would break bm25s; a placeholder token
    keeps row numbers aligned with chunks.
    Example: token_ids(["Paid leave", "leave"]) -> ([array([0, 1]), array([1])], {"paid": 0, "leave": 1})
    """
    vocab: dict[str, int] = {}
    ids: list[np.ndarray] = []
    for text in texts:
        tokens = keyword_tokens(text) or ["\x00"]
        ids.append(np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens), np.int32, len(tokens)))
    return ids, vocab


def remove_stale(index_dir: Path, keep: str) -> None:
    """Delete data folders and temp folders that the manifest no longer points at."""
    for p in index_dir.iterdir():
        if p.is_dir() and p.name != keep and (p.name.startswith("data-") or p.name.startswith(".tmp-")):
            shutil.rmtree(p, ignore_errors=True)


def _vectors_in_order(index: Any, ids: Sequence[str]) -> np.ndarray:
    """The vectors of the chunks with these ids, row i for ids[i]."""
    if index.ntotal != len(ids):
        raise ValueError(f"{index.ntotal} vectors for {len(ids)} chunks")
    if not ids:
        return np.zeros((0, index.d), dtype=np.float32)
    import faiss

    # saved in chunk order: read all rows at once (one call instead of one per chunk)
    stored_ids = faiss.vector_to_array(index.id_map)
    wanted = np.array([faiss_id(c) for c in ids], dtype=np.int64)
    if np.array_equal(stored_ids, wanted):
        inner = faiss.downcast_index(index.index)
        flat = faiss.downcast_index(inner.storage) if hasattr(inner, "storage") else inner
        if hasattr(flat, "get_xb"):  # a view of FAISS's own copy: large indexes are not held twice in RAM
            view = faiss.rev_swig_ptr(flat.get_xb(), len(ids) * index.d).reshape(len(ids), index.d)
            owned = view.view(_IndexView)
            owned.owner = index  # the memory belongs to the index: keep it alive as long as the array
            return owned
        return np.asarray(inner.reconstruct_n(0, len(ids)), dtype=np.float32)
    return np.vstack([index.reconstruct(int(i)) for i in wanted]).astype(np.float32)


def _read_docstore(raw: Any) -> tuple[ChunkTable, list[str]]:
    """The chunk table and the embed keys of a parsed docstore, of either format; ValueError / KeyError /
    TypeError on any damage (the caller turns them into IndexCorruptError)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("documents"), list):
        raise ValueError("the docstore is not an object with a list of documents")
    docs = [Document(**d) for d in raw["documents"]]
    cols = raw["chunks"]
    if raw.get("format") == DOCSTORE_FORMAT:
        if not isinstance(cols, dict):
            raise ValueError("the docstore's chunks are not columns")
        ids, keys = cols["id"], cols["embed_key"]
        rows, starts, ends = cols["doc"], cols["start"], cols["end"]
    elif raw.get("format") == 1 and isinstance(cols, list):  # written before columns (stop 28 and earlier)
        position = {d.source: k for k, d in enumerate(docs)}
        ids = [c["id"] for c in cols]
        keys = [c.get("embed_key", "") for c in cols]
        rows = [position[c["source"]] for c in cols]
        starts, ends = [c["start"] for c in cols], [c["end"] for c in cols]
    else:
        raise ValueError(f"unknown docstore format {raw.get('format')!r}")
    if not isinstance(keys, list) or len(keys) != len(ids) or not all(isinstance(k, str) for k in keys):
        raise ValueError("the docstore's embed keys do not match its chunks")
    return ChunkTable(ids, docs, rows, starts, ends), keys


class _IndexView(np.ndarray):  # type: ignore[type-arg]
    """A numpy view of vectors stored inside a FAISS index, holding the index alive."""

    owner: Any = None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_json(path: Path, obj: Any, compact: bool = False) -> None:
    with path.open("w", encoding="utf-8") as f:
        if compact:  # the docstore: one element per line would double its size
            json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        else:
            json.dump(obj, f, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
