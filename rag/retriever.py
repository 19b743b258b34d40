"""Hybrid retrieval: dense (FAISS, cosine) fused with BM25 (bm25s), deduplicated.

Dense search finds paraphrases; BM25 finds names and figures ("G42", "$650 million") that embeddings blur.
Each contributes `fetch_k` candidates. Default fusion ("score"): each score is normalised over the
candidates (cosine min-max, BM25 divided by its best) and `hit.score = w * dense + (1 - w) * bm25`, in
[0, 1]; "rrf" (reciprocal rank fusion, sum of 1/(60 + rank)) is the alternative. On the 66 answerable
questions of eval/datasets/seeds.jsonl, score fusion put an answer-bearing passage first for 71%
(RRF 56%, BM25 alone 67%, dense alone 42%) and in the top 3 for 86% (RRF 86%). Every hit carries both
raw scores in `hit.scores` ("dense" is the cosine, comparable across queries; "bm25" is 0 where no
query word matches). Near-duplicates (identical text, or
passages overlapping by more than half) keep only the best. Both sides come from a `Store`
(`index.store_api`): FAISS + bm25s by default, pgvector + PostgreSQL full text with RAG_STORE=postgres.
Leaves out rerankers (no offline cross-encoder exists) and metadata filters.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from index.embedder import Embedder, load_embedder
from index.errors import QueryError
from index.records import Chunk, Hit
from index.store import IndexStore
from index.store_api import Store
from index.store_faiss import FaissStore
from index.stores import check_store, open_store
from rag.config import Config

RRF_K = 60  # the usual constant of reciprocal rank fusion (Cormack et al. 2009)
_MAX_OVERLAP = 0.5  # share of the shorter passage two hits may overlap before one is dropped
_QUERY_CACHE = 256  # query vectors kept: a UI re-asks, an eval repeats, and embedding is most of a search


FUSIONS = ("score", "rrf")


@dataclass
class _Candidate:
    chunk: Chunk
    dense_rank: int = 0  # 0 = not in that list
    bm25_rank: int = 0
    bm25: float = 0.0
    fused: float = 0.0


class HybridRetriever:
    """`search(query, k)` over one `Store` (FAISS or PostgreSQL). Build it with `open_retriever(config)`."""

    def __init__(
        self,
        store: Store | IndexStore,
        embedder: Embedder,
        fetch_k: int = 30,
        default_k: int = 5,
        fusion: str = "score",
        dense_weight: float = 0.5,
    ) -> None:
        if fusion not in FUSIONS:
            raise ValueError(f"Unknown fusion {fusion!r}; valid: {', '.join(FUSIONS)}.")
        if isinstance(store, IndexStore):  # an in-memory index (tests, benchmarks)
            store = FaissStore.from_state(store)
        self.store: Store = store
        self.embedder = embedder
        self.fetch_k = fetch_k
        self.default_k = default_k
        self.fusion = fusion
        self.dense_weight = dense_weight
        self._qvecs: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """The k best passages for `query`, best first, ranks from 1. Raises QueryError for an empty query."""
        if not query or not query.strip():
            raise QueryError("The query is empty: type a question or some keywords.")
        k = self.default_k if k is None else k
        self.store.refresh()  # another process may have re-indexed (cheap: at most a stat per second)
        if k <= 0:
            return []
        fetch = max(self.fetch_k, k * 3)
        qvec = self.query_vector(query.strip())
        candidates: dict[str, _Candidate] = {}
        for rank, (chunk, _) in enumerate(self.store.search_dense(qvec, fetch), start=1):
            candidates.setdefault(chunk.id, _Candidate(chunk)).dense_rank = rank
        for rank, (chunk, score) in enumerate(self.store.search_keyword(query, fetch), start=1):
            cand = candidates.setdefault(chunk.id, _Candidate(chunk))
            cand.bm25_rank, cand.bm25 = rank, score
        if not candidates:
            return []
        cands = list(candidates.values())
        dense = self.store.similarities(qvec, [c.chunk.id for c in cands])
        self._fuse(cands, dense)
        # ties (rare: equal fused scores) go by chunk id, so both stores order them alike
        order = sorted(range(len(cands)), key=lambda i: (-cands[i].fused, cands[i].chunk.id))
        hits: list[Hit] = []
        for i in order:
            cand, cos = cands[i], dense[i]
            if any(_duplicate(cand.chunk, h.chunk) for h in hits):
                continue
            scores = {"dense": float(cos), "bm25": float(cand.bm25)}
            hits.append(Hit(chunk=cand.chunk, score=float(cand.fused), rank=len(hits) + 1, scores=scores))
            if len(hits) == k:
                break
        return hits

    def _fuse(self, cands: list[_Candidate], dense: np.ndarray) -> None:
        if self.fusion == "rrf":
            for c in cands:
                c.fused = sum(1.0 / (RRF_K + r) for r in (c.dense_rank, c.bm25_rank) if r)
            return
        lo, hi = float(dense.min()), float(dense.max())
        dense_n = (dense - lo) / (hi - lo) if hi - lo > 1e-9 else np.ones_like(dense)
        best_bm25 = max((c.bm25 for c in cands), default=0.0)
        w = self.dense_weight
        for c, d in zip(cands, dense_n, strict=True):
            c.fused = w * float(d) + (1.0 - w) * (c.bm25 / best_bm25 if best_bm25 > 0 else 0.0)

    def query_vector(self, query: str) -> np.ndarray:
        """The query's embedding, from a small LRU cache when it was asked recently."""
        with self._lock:
            vec = self._qvecs.get(query)
            if vec is not None:
                self._qvecs.move_to_end(query)
                return vec
        vec = np.asarray(self.embedder.embed([query])[0], dtype=np.float32)
        with self._lock:
            self._qvecs[query] = vec
            if len(self._qvecs) > _QUERY_CACHE:
                self._qvecs.popitem(last=False)
        return vec


def open_retriever(config: Config, embedder: Embedder | None = None) -> HybridRetriever:
    """Open the store that `config` names (RAG_STORE) and the embedder it was built with.

    Raises IndexMissingError ("No index at .rag. Run `rag index` first."), IndexCorruptError (damaged, or
    built with another model), ModelMissingError, or StoreError (database unreachable), each naming the fix.
    """
    store = open_config_store(config)  # fails fast, before loading a model, when there is no index
    try:
        embedder = embedder or load_embedder(
            config.embed_model, config.embed_batch, config.embed_url, config.embed_timeout
        )
        info = store.info()
        check_store(store, embedder.name, None, store_location(config))
        if info is not None and info.dim != embedder.dim:
            check_store(store, embedder.name, embedder.dim, store_location(config))
    except BaseException:
        store.close()  # a database pool would otherwise outlive the error
        raise
    if hasattr(store, "embedder_name"):
        store.embedder_name = embedder.name  # a reload must fit the model too
    return HybridRetriever(store, embedder, fetch_k=config.fetch_k, default_k=config.k)


def open_config_store(config: Config, must_exist: bool = True) -> Store:
    """The store RAG_STORE names: the FAISS folder RAG_INDEX_DIR, or the database RAG_DATABASE_URL."""
    options = {}
    if config.store == "postgres":  # the FAISS store has no such knobs
        options = {"ef_search": config.pg_ef_search, "rank": config.pg_keyword_rank,
                   "keyword_budget": config.pg_keyword_budget}
    return open_store(config.store, index_dir=config.index_dir, database_url=config.database_url,
                      must_exist=must_exist, **options)


def store_location(config: Config) -> str:
    """Where the store lives, for messages (a database URL without its password)."""
    if config.store == "postgres":
        from index.pg_store import redact

        return redact(config.database_url)
    return config.index_dir


def _duplicate(a: Chunk, b: Chunk) -> bool:
    """Same text, or the same document with spans overlapping by more than half of the shorter one."""
    if a.text.strip() == b.text.strip():
        return True
    if a.source != b.source:
        return False
    overlap = min(a.end, b.end) - max(a.start, b.start)
    return overlap > _MAX_OVERLAP * min(a.end - a.start, b.end - b.start)
