"""Benchmark of the stores (FAISS folder, PostgreSQL + pgvector) side by side; prints, asserts nothing.

Sections (`--sections`, default startup, search, index):
  startup  save, then load (open + first keyword search) a FAISS index of N synthetic chunks; peak RSS
  bm25     the FAISS folder's keyword index built from N synthetic chunks two ways, each in a fresh process:
           bm25s's own path (lists of token strings) against ours (int32 id arrays, index.store.token_ids);
           build time, memory added by the build (peak RSS over the texts alone), same top 10 or not
  search   per size: build each store once in --work (reused later), open time and memory, then dense /
           keyword / fusion / retrieval p50/p90, recall@10 against exact, and for PostgreSQL's ts_rank_idf
           the rows ranked, the share of provably exact top 30s and the overlap with unbounded ranking
  build    the builds of `search` only (run them apart from the measurements)
  quality  answer-bearing passage first (keyword, fused) per ranking on the seeds, handbook, pydocs questions
  index    indexing throughput (chunks/s) of `build_index` on a real corpus against raw `model.encode`
  replicas `rag serve` (extractive) x1 vs x2 on one database under 16 loopback clients
Synthetic chunks: texts are runs of consecutive sentences of Debian's python3-doc HTML (real term
frequencies), vectors come from 2,000 clusters in a 48-d latent space projected to 384-d (unit length);
real embeddings (MiniLM on a real corpus) are in `index`. Every run is bounded; run under `nice -n 19`:
  nice -n 19 .venv/bin/python scripts/bench_store.py --sections search --sizes 10000 100000 --work /tmp/b
"""

from __future__ import annotations

import argparse
import gc
import html
import os
import re
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DIM = 384
DOCS = Path("/usr/share/doc/python3/html")  # Debian python3-doc: realistic text for keyword search
CHUNKS_PER_DOC = 10
LATENT = 48


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1000, q))


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


_TAG = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def sentences(docs: Path = DOCS) -> list[str]:
    """The sentences (4 to 60 words) of the HTML pages under `docs`, in page order.

    Example: sentences() -> ['Return a new empty dictionary, or NULL on failure.', ...] (python3-doc: ~54k)
    """
    out: list[str] = []
    for f in sorted(docs.rglob("*.html")):
        raw = f.read_text(encoding="utf-8", errors="replace")
        main = raw.find('role="main"')
        raw = raw[max(main, 0) :]
        side = raw.find('class="sphinxsidebar"')
        text = html.unescape(_TAG.sub(" ", raw[:side] if side > 0 else raw))
        for s in _SENTENCE_END.split(re.sub(r"[\u00b6\s]+", " ", text)):
            words = s.split()
            if 4 <= len(words) <= 60:
                out.append(" ".join(words))
    if not out:
        raise SystemExit(f"No HTML sentences under {docs}: apt-get install python3-doc, or pass --docs.")
    return out


def synthetic(n: int, seed: int = 0, n_queries: int = 0) -> tuple[list[str], np.ndarray]:
    """n chunk texts (>= 100 words) and n unit vectors with cluster structure (then n_queries query vectors).

    Texts are runs of consecutive sentences of a real corpus (Debian's python3-doc), from random starts, so
    term frequencies, co-occurrence and query-term document frequencies are those of real documentation; at
    n far above the corpus (~9k chunks) each sentence recurs in about n / 9,000 chunks.
    """
    rng = np.random.default_rng(seed)
    pool = sentences()
    words = np.cumsum([0] + [s.count(" ") + 1 for s in pool])
    starts = rng.integers(0, len(pool), n)
    ends = np.minimum(np.searchsorted(words, words[starts] + 100), len(pool))
    texts = [" ".join(pool[a : max(b, a + 1)]) for a, b in zip(starts, ends, strict=True)]
    # sentence embeddings lie near a low-dimensional manifold: 2,000 topic clusters in a 48-d latent
    # space, projected to 384-d, plus a little isotropic noise (pure 384-d Gaussians would be far harder
    # for any ANN index than real embeddings are); queries are new points drawn the same way
    latent = rng.standard_normal((2000, LATENT)).astype(np.float32)
    projection = rng.standard_normal((LATENT, DIM)).astype(np.float32) / np.sqrt(LATENT)

    def draw(m: int) -> np.ndarray:
        points = latent[rng.integers(0, len(latent), m)]
        points = points + 0.5 * rng.standard_normal((m, LATENT)).astype(np.float32)
        v = points @ projection + 0.05 * rng.standard_normal((m, DIM)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    vecs = np.vstack([draw(min(100_000, n - i)) for i in range(0, n, 100_000)])
    return texts, (vecs if not n_queries else np.vstack([vecs, draw(n_queries)]))


def change_set(texts: list[str], vecs: np.ndarray) -> Any:
    from index.chunker import CHUNKER_VERSION
    from index.records import Chunk, Document, content_hash
    from index.store_api import ChangeSet

    documents, chunks = [], []
    for d in range(0, len(texts), CHUNKS_PER_DOC):
        parts = texts[d : d + CHUNKS_PER_DOC]
        text = "\n".join(parts)
        source = f"doc{d // CHUNKS_PER_DOC:07d}.txt"
        doc = Document(content_hash(text), source, f"Document {d}", text, f"/synthetic/{source}", 0.0)
        documents.append(doc)
        start = 0
        for p in parts:
            chunks.append(
                Chunk(
                    content_hash(source, p, str(start)), doc.id, source, doc.title, p, start, start + len(p)
                )
            )
            start += len(p) + 1
    keys = [content_hash(t) for t in texts]
    settings = {"chunk_tokens": 200, "chunk_overlap": 40, "chunker": CHUNKER_VERSION}
    return ChangeSet("synthetic", DIM, settings, documents, chunks, vecs, keys)


def section_startup(sizes: list[int], work: Path, ann_threshold: int) -> None:
    from index.store_faiss import FaissStore

    print("\n## startup (FAISS folder): save once, then open + first keyword search, in a fresh process")
    print(f"{'chunks':>9} {'save s':>8} {'disk MB':>8} {'load s':>8} {'1st kw s':>9} {'RSS MB':>8} "
          f"{'data RSS MB':>12} {'save RSS MB':>12}")
    for n in sizes:
        texts, vecs = synthetic(n)
        ix = work / f"faiss-{n}"
        store = FaissStore(ix, must_exist=False, ann_threshold=ann_threshold)
        changes = change_set(texts, vecs)
        held = rss_mb()  # peak with the synthetic texts, vectors and change set in memory
        t0 = time.perf_counter()
        store.apply(changes)
        save_s = time.perf_counter() - t0
        store.close()
        gc.collect()
        disk = sum(f.stat().st_size for f in ix.rglob("*") if f.is_file()) / 1e6
        out = _subprocess_load(ix)
        # peaks of this process (sizes ascending): before the save, and with it
        print(f"{n:>9} {save_s:>8.1f} {disk:>8.0f} {out['load']:>8.2f} {out['kw']:>9.2f} {out['rss']:>8.0f} "
              f"{held:>12.0f} {rss_mb():>12.0f}")


_BM25_BUILD = """
import json, re, sys, time
sys.path.insert(0, {root!r})
import numpy as np
import bm25s
from index.store import build_bm25
from index.tokens import keyword_tokens
texts = json.load(open({texts!r}))
queries = ["how to open a file", "raise an exception", "default value of timeout", "iterate over a dict",
           "regular expression match", "thread safe queue", "encode unicode string", "sort a list by key"]
def hwm():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
before = hwm()
t = time.perf_counter()
if {strings!r}:  # bm25s's documented input: every chunk as a list of token strings
    bm = bm25s.BM25()
    bm.index([keyword_tokens(x) or ["\\x00"] for x in texts], show_progress=False)
else:
    bm = build_bm25(texts)
took = time.perf_counter() - t
tops = [[int(i) for i in np.argsort(-bm.get_scores(keyword_tokens(q)), kind="stable")[:10]] for q in queries]
print(json.dumps({{"build": took, "added": hwm() - before, "tops": tops}}))
"""


def section_bm25(sizes: list[int], work: Path) -> None:
    import json
    import subprocess

    print("\n## bm25: keyword index build, bm25s token strings vs int32 id arrays (ours), fresh process each")
    print(f"{'chunks':>9} {'strings s':>10} {'ids s':>7} {'strings +MB':>12} {'ids +MB':>8} {'ratio':>6} "
          "same top10")
    for n in sizes:
        texts, _ = synthetic(n)
        path = work / f"bm25-texts-{n}.json"
        path.write_text(json.dumps(texts), encoding="utf-8")
        runs = []
        for strings in (True, False):
            code = _BM25_BUILD.format(root=str(ROOT), texts=str(path), strings=strings)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        a, b = runs
        same = sum(x == y for x, y in zip(a["tops"], b["tops"], strict=True))
        print(f"{n:>9} {a['build']:>10.1f} {b['build']:>7.1f} {a['added']:>12.0f} {b['added']:>8.0f} "
              f"{a['added'] / max(b['added'], 1):>6.1f} {same}/{len(a['tops'])}")
        path.unlink()


def _subprocess_load(ix: Path) -> dict[str, float]:
    import json
    import subprocess

    # peak RSS from VmHWM: ru_maxrss would keep the parent's peak across fork + exec
    code = (
        f"import json,sys,time,re; sys.path.insert(0, {str(ROOT)!r})\n"
        "t=time.perf_counter(); from index.store_faiss import FaissStore\n"
        f"s=FaissStore({str(ix)!r}); a=time.perf_counter()-t\n"
        "t=time.perf_counter(); s.search_keyword('how to open a file', 10); b=time.perf_counter()-t\n"
        "print(json.dumps({'load': a, 'kw': b, "
        "'rss': int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))/1024}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


class _Lookup:
    """An embedder that returns prepared query vectors, so search timings exclude the model."""

    name = "synthetic"
    dim = DIM

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.vstack([self.table[t] for t in texts])


def keyword_queries(n: int, seed: int = 2) -> list[str]:
    """Half natural questions (eval/datasets, all corpora), half 6-12 word openings of corpus sentences."""
    import json

    rng = np.random.default_rng(seed)
    questions = [
        json.loads(line)["question"]
        for f in sorted((ROOT / "eval" / "datasets").glob("*.jsonl"))
        for line in f.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    pool = sentences()
    picked = [questions[i] for i in rng.permutation(len(questions))[: n - n // 2]]
    for i in rng.integers(0, len(pool), n // 2):
        words = pool[i].split()
        picked.append(" ".join(words[: int(rng.integers(6, 13))]))
    return [picked[i] for i in rng.permutation(len(picked))]


def latencies(fn: Callable[[int], Any], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def recall_at_10(found: list[list[str]], exact: list[list[str]]) -> float:
    return float(np.mean([len(set(f[:10]) & set(e[:10])) / 10 for f, e in zip(found, exact, strict=True)]))


def measure(
    name: str, store: Any, qv: np.ndarray, kq: list[str], exact: list[list[str]] | None, sides: str = "all"
) -> tuple[list[list[str]], dict[str, Any]]:
    """Dense, keyword, fused latencies (one query at a time) and recall@10 against `exact`; prints one row.

    `sides="keyword"` times the keyword side only (a PostgreSQL table without its HNSW index), "dense" the
    dense side only (FAISS over the vectors alone).
    """
    from rag.retriever import HybridRetriever

    n = len(qv)
    found: list[list[str]] = []
    for i in range(min(n, 20)):  # warm-up, so no row pays for the previous store's or ranking's cache
        if sides != "keyword":  # a table without its HNSW index would scan every vector
            store.search_dense(qv[i], 30)
        if sides != "dense":
            store.search_keyword(kq[i], 30)
    if sides == "keyword":
        return found, _keyword_only(name, store, kq)
    dense_t = latencies(lambda i: found.append([c.id for c, _ in store.search_dense(qv[i], 30)]), n)
    if sides == "dense":
        print(
            f"  {name:<22} dense {pct(dense_t, 50):7.2f}/{pct(dense_t, 90):7.2f}  "
            f"(load {os.getloadavg()[0]:.1f})"
        )
        return found, {"store": name, "dense": (pct(dense_t, 50), pct(dense_t, 90))}
    evidence: list[Any] = []  # PostgreSQL ts_rank_idf: rows ranked and exactness per keyword query
    if getattr(store, "rank", "") == "ts_rank_idf":
        kw = latencies(lambda i: evidence.append(store.keyword(kq[i], 30)), n)
    else:
        kw = latencies(lambda i: store.search_keyword(kq[i], 30), n)
    retriever = HybridRetriever(store, _Lookup({q: qv[i] for i, q in enumerate(kq)}))  # type: ignore[arg-type]
    for q in kq:
        retriever.query_vector(q)  # cached: the fused figure is retrieval only
    fused = latencies(lambda i: retriever.search(kq[i], 5), n)
    # fusion = what the retriever adds to its two searches: similarities of the union, fusion, dedup
    fusion = [max(f - d - k, 0.0) for f, d, k in zip(fused, dense_t, kw, strict=True)]
    rec = recall_at_10(found, exact) if exact is not None else None
    row: dict[str, Any] = {
        "store": name,
        "dense": (pct(dense_t, 50), pct(dense_t, 90)),
        "keyword": (pct(kw, 50), pct(kw, 90)),
        "fusion": (pct(fusion, 50), pct(fusion, 90)),
        "fused": (pct(fused, 50), pct(fused, 90)),
        "recall": rec,
    }
    print(
        f"  {name:<22} dense {row['dense'][0]:7.2f}/{row['dense'][1]:7.2f}  "
        f"keyword {row['keyword'][0]:7.2f}/{row['keyword'][1]:7.2f}  "
        f"fusion {row['fusion'][0]:6.2f}/{row['fusion'][1]:6.2f}  "
        f"retrieval {row['fused'][0]:7.2f}/{row['fused'][1]:7.2f} ms  "
        f"recall@10 {'exact' if rec is None else f'{rec:.3f}'}  (load {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    _evidence(evidence)
    _agreement(store, kq)
    return found, row


def _keyword_only(name: str, store: Any, kq: list[str]) -> dict[str, Any]:
    evidence: list[Any] = []
    kw = latencies(lambda i: evidence.append(store.keyword(kq[i], 30)), len(kq))
    print(
        f"  {name:<22} dense       -/      -  keyword {pct(kw, 50):7.2f}/{pct(kw, 90):7.2f}  "
        f"(load {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    _evidence(evidence)
    _agreement(store, kq)
    return {"store": name, "keyword": (pct(kw, 50), pct(kw, 90))}


def _evidence(evidence: list[Any]) -> None:
    """Rows ranked per PostgreSQL keyword query, and how often the top 30 is provably exact."""
    if not evidence:
        return
    modes = {m: sum(e.mode == m for e in evidence) for m in ("all", "rare", "two")}
    ranked = [e.ranked for e in evidence]
    print(
        f"  {'':<22} keyword rows ranked median {np.median(ranked):.0f}, max {max(ranked)}; top 30 provably "
        f"exact for {100 * np.mean([e.exact for e in evidence]):.0f}% of queries; plans {modes}"
    )


def _agreement(store: Any, kq: list[str], n: int = 50) -> None:
    """Top-10 overlap of PostgreSQL's bounded ts_rank_idf with the same ranking over every matching row."""
    if getattr(store, "rank", "") != "ts_rank_idf":
        return
    budget = store.keyword_budget
    bounded = [[c.id for c, _ in store.search_keyword(q, 10)] for q in kq[:n]]
    store.keyword_budget = 10**9
    try:
        full = [[c.id for c, _ in store.search_keyword(q, 10)] for q in kq[:n]]
    finally:
        store.keyword_budget = budget
    same = [len(set(b) & set(f)) / max(len(f), 1) for b, f in zip(bounded, full, strict=True)]
    print(
        f"  {'':<22} top-10 overlap with ranking every matching row ({n} queries): mean {np.mean(same):.3f}, "
        f"identical top 10 for {100 * np.mean([b == f for b, f in zip(bounded, full, strict=True)]):.0f}%"
    )


def _builds(work: Path) -> dict[str, Any]:
    import json

    f = work / "builds.json"
    return dict(json.loads(f.read_text())) if f.exists() else {}


def _record_build(work: Path, key: str, seconds: float, load: float) -> None:
    import json

    builds = _builds(work)
    when = time.strftime("%Y-%m-%d %H:%M")
    builds[key] = {"seconds": round(seconds, 1), "load": round(load, 2), "when": when}
    (work / "builds.json").write_text(json.dumps(builds, indent=1))


class _Lazy:
    """A value made on first use (the ChangeSet of a size: only needed when a store must be built)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make, self.value = make, None

    def __call__(self) -> Any:
        if self.value is None:
            self.value = self.make()
        return self.value


def _faiss_store(work: Path, kind: str, n: int, changes: Callable[[], Any]) -> Any:
    """The FAISS store `kind` ("flat" | "hnsw") of n chunks in `work`, built (and timed) when missing."""
    from index.store_faiss import FaissStore

    ix = work / f"s-{kind}-{n}"
    threshold = 10**12 if kind == "flat" else 0
    if (ix / "manifest.json").exists():
        return FaissStore(ix, ann_threshold=threshold)
    store = FaissStore(ix, must_exist=False, ann_threshold=threshold)
    cs = changes()
    load0 = os.getloadavg()[0]
    _, t = timed(lambda: store.apply(cs))
    _record_build(work, f"faiss-{kind}-{n}", t, max(load0, os.getloadavg()[0]))
    return store


def _complete_pg(url: str, n: int, **options: Any) -> Any:
    """The store at `url` when it already holds all n chunks (a rebuild is skipped), else None."""
    from index.pg_store import PgStore

    try:
        store = PgStore.connect(url, **options)
    except Exception:  # noqa: BLE001 - no such database yet
        return None
    info = store.info()
    if info is not None and info.chunks == n:
        return store
    store.close()
    return None


def _pg_store(work: Path, admin: str, n: int, changes: Callable[[], Any], build_memory: str) -> Any:
    """The PostgreSQL store of n chunks (database bench_<n>), built (and timed) when missing or partial."""
    from index.pg_store import PgStore
    from tests.pg_server import new_database

    store = _complete_pg(_db_url(admin, f"bench_{n}"), n, build_memory=build_memory)
    if store is not None:
        return store
    store = PgStore.connect(new_database(admin, f"bench_{n}"), must_exist=False, build_memory=build_memory)
    cs = changes()
    load0 = os.getloadavg()[0]
    _, t = timed(lambda: store.apply(cs))
    _record_build(work, f"postgres-{n}", t, max(load0, os.getloadavg()[0]))
    return store


def _pg_keyword_store(work: Path, admin: str, n: int, changes: Callable[[], Any]) -> Any:
    """PostgreSQL with the rows, GIN index and lexeme counts of n chunks but no HNSW index (database
    bench_kw_<n>): one small rebuild, the HNSW index dropped, then the rest as one incremental run."""
    import psycopg

    from index.pg_store import PgStore
    from index.store_api import ChangeSet
    from tests.pg_server import new_database

    name = f"bench_kw_{n}"
    store = _complete_pg(_db_url(admin, name), n)
    if store is not None:
        return store
    store = PgStore.connect(new_database(admin, name), must_exist=False)
    cs = changes()
    k0 = CHUNKS_PER_DOC
    head = ChangeSet(
        cs.embed_model, cs.dim, cs.settings, cs.documents[:1], cs.chunks[:k0], cs.vectors[:k0],
        cs.embed_keys[:k0], replace_all=True,
    )  # fmt: skip
    store.apply(head)
    with psycopg.connect(store.url, autocommit=True) as conn:
        conn.execute("DROP INDEX rag_chunks_hnsw")
    rest = ChangeSet(
        cs.embed_model, cs.dim, cs.settings, cs.documents[1:], cs.chunks[k0:], cs.vectors[k0:],
        cs.embed_keys[k0:],
    )  # fmt: skip
    load0 = os.getloadavg()[0]
    _, t = timed(lambda: store.apply(rest))
    _record_build(work, f"postgres-kw-{n}", t, max(load0, os.getloadavg()[0]))
    return store


def _db_url(admin: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(admin)._replace(path="/" + name))


def _faiss_footprint(ix: Path) -> str:
    out = _subprocess_load(ix)
    disk = sum(f.stat().st_size for f in ix.rglob("*") if f.is_file()) / 1e6
    return (
        f"open {out['load']:.2f} s + 1st keyword {out['kw']:.2f} s, peak RSS {out['rss']:.0f} MB, "
        f"disk {disk:.0f} MB"
    )


def _pg_footprint(store: Any) -> str:
    import psycopg

    from index.pg_store import PgStore

    t0 = time.perf_counter()
    fresh = PgStore.connect(store.url)
    fresh.search_keyword("how to open a file", 10)
    opened = time.perf_counter() - t0
    fresh.close()
    with psycopg.connect(store.url) as conn:
        sizes = conn.execute(
            "SELECT pg_database_size(current_database()), pg_total_relation_size('rag_chunks'), "
            "coalesce(pg_relation_size(to_regclass('rag_chunks_hnsw')), 0), "
            "pg_relation_size('rag_chunks_tsv')"
        ).fetchone()
    assert sizes is not None
    db, chunks, hnsw, gin = (x / 1e6 for x in sizes)
    return (
        f"connect + 1st keyword {opened:.2f} s, database {db:.0f} MB (chunks with indexes {chunks:.0f}, "
        f"HNSW {hnsw:.0f}, GIN {gin:.0f}); client RSS {rss_mb():.0f} MB"
    )


def section_search(
    sizes: list[int], work: Path, stores: list[str], n_queries: int, rankings: list[str], build_memory: str,
    full_upto: int, build_only: bool = False,
) -> None:  # fmt: skip
    """Builds (when missing) and times the stores per size; above `full_upto` chunks only what fits in a
    session on a shared 2-core machine: FAISS flat, and PostgreSQL without its HNSW index (keyword side)."""
    from index.pg_store import KEYWORD_BUDGET

    print(f"\n## search ({n_queries} queries, k=30 per side, fused top 5; query embedding separate)")
    if not build_only:
        p50, p90 = _query_embedding_ms()
        print(f"  query embedding (MiniLM, one query, cached model): p50 {p50:.1f} ms, p90 {p90:.1f} ms")
    admin = _postgres(work) if "postgres" in stores else ""
    for n in sizes:
        texts, both = synthetic(n, n_queries=n_queries)
        vecs, qv = both[:n], both[n:]
        kq = keyword_queries(n_queries)
        changes = _Lazy(lambda: change_set(texts, vecs))  # noqa: B023 - used within this iteration
        print(f"{n} chunks:", flush=True)
        opened: list[tuple[str, Any]] = []
        full = n <= full_upto
        for kind in ("flat", "hnsw"):
            if full and ((kind == "flat" and ("faiss" in stores or not build_only)) or kind in stores):
                opened.append((f"faiss {kind}", _faiss_store(work, kind, n, changes)))
        if not full and not build_only:  # the FAISS store's in-memory build outgrows this machine
            ids = [c.id for c in changes().chunks]
            opened.append(("faiss flat (vectors only)", _Vectors(vecs, ids)))
        pg_full = full or _pg_built(admin, n) if admin else False
        if admin and pg_full:
            opened.append(("postgres", _pg_store(work, admin, n, changes, build_memory)))
        elif admin:
            opened.append(("postgres", _pg_keyword_store(work, admin, n, changes)))
        changes.value = None
        texts, vecs = [], vecs[:0]
        gc.collect()
        for key, b in _builds(work).items():
            if key.endswith(f"-{n}"):
                print(f"  build {key}: {b['seconds']:.0f} s (load {b['load']:.1f}, {b['when']})")
        if build_only:
            for _, st in opened:
                st.close()
            continue
        for name, st in opened:
            if name.startswith("faiss"):
                where = (
                    _faiss_footprint(st.path)
                    if full
                    else f"{st.index.ntotal * DIM * 4 / 1e6:.0f} MB of vectors"
                )
            else:
                where = _pg_footprint(st)
            print(f"  {name}: {where}", flush=True)
        exact, _ = measure(opened[0][0], opened[0][1], qv, kq, None, sides="all" if full else "dense")
        for name, st in opened[1:]:
            if name != "postgres":
                measure(name, st, qv, kq, exact)
                continue
            for rank in rankings:  # "ts_rank_idf@2000": that ranking with another row budget
                st.rank, _, budget = rank.partition("@")
                st.keyword_budget = int(budget) if budget else KEYWORD_BUDGET
                label = f"postgres {rank}" if pg_full else f"postgres {rank} (no HNSW)"
                measure(label, st, qv, kq, exact, sides="all" if pg_full else "keyword")
        for _, st in opened:
            st.close()
        gc.collect()


class _Vectors:
    """Exact inner product over the vectors alone (FAISS IndexFlatIP, no docstore, no BM25)."""

    def __init__(self, vecs: np.ndarray, ids: list[str]) -> None:
        import faiss

        self.index = faiss.IndexFlatIP(vecs.shape[1])
        self.index.add(np.ascontiguousarray(vecs, dtype=np.float32))
        self.ids = ids

    def search_dense(self, q: np.ndarray, k: int) -> list[tuple[Any, float]]:
        from types import SimpleNamespace

        scores, rows = self.index.search(np.asarray(q, dtype=np.float32)[None, :], k)
        return [(SimpleNamespace(id=self.ids[r]), float(d)) for d, r in zip(scores[0], rows[0], strict=True)]

    def close(self) -> None:
        self.index.reset()


def _pg_built(admin: str, n: int) -> bool:
    """True when database bench_<n> holds a complete build (with its HNSW index)."""
    from index.pg_store import PgStore

    try:
        store = PgStore.connect(_db_url(admin, f"bench_{n}"))
    except Exception:  # noqa: BLE001 - no such database
        return False
    info = store.info()
    store.close()
    return info is not None and info.chunks == n


class _Replay:
    """Replays vectors embedded earlier (by text), so a second build measures the store, not the model."""

    def __init__(self, name: str, table: dict[str, np.ndarray], count_tokens: Any) -> None:
        self.name, self.table = name, table
        self.dim = len(next(iter(table.values())))
        self.count_tokens = count_tokens  # the same chunking as the embedded run

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.vstack([self.table[t] for t in texts])


def section_index(
    work: Path, corpus: Path, n_files: int, stores: list[str], n_queries: int, reuse: bool = False
) -> None:
    import shutil

    from index.builder import build_index
    from index.chunker import embed_text
    from index.embedder import load_embedder
    from index.store_faiss import FaissStore

    files = sorted(corpus.glob("*.html"))[:n_files]
    folder = work / "real-corpus"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for f in files:
        shutil.copy(f, folder / f.name)
    emb = load_embedder("")
    model = emb.model  # type: ignore[attr-defined]
    emb.embed(["warm up"])
    print(f"\n## indexing a real corpus: {len(files)} HTML pages of {corpus} (MiniLM, CPU)")
    ix = work / "real-faiss"
    rng = np.random.default_rng(0)
    if not (reuse and (ix / "manifest.json").exists()):  # --reuse: skip the (long) embedding run
        shutil.rmtree(ix, ignore_errors=True)
        report = build_index([folder], ix, emb, progress=False)
        rate = report.added / report.seconds
        texts = [embed_text(c) for c in FaissStore(ix).chunks]
        sample = [texts[i] for i in rng.choice(len(texts), size=min(1000, len(texts)), replace=False)]
        _, raw_s = timed(lambda: model.encode(sample, batch_size=16, normalize_embeddings=True))
        raw = len(sample) / raw_s
        print(
            f"  build_index (load, chunk, embed, save): {report.chunks} chunks in {report.seconds:.0f} s = "
            f"{rate:.1f} chunks/s"
        )
        print(f"  raw model.encode on 1,000 of the same chunks: {raw:.1f} chunks/s; ratio {rate / raw:.2f}")
    store = FaissStore(ix)
    texts = [embed_text(c) for c in store.chunks]
    state = store.state
    assert state is not None
    admin = _postgres(work) if "postgres" in stores else ""
    if not reuse:
        table = {t: state.vectors[i].copy() for i, t in enumerate(texts)}
        replay = _Replay(emb.name, table, emb.count_tokens)  # type: ignore[attr-defined]
        _, t_faiss = timed(lambda: build_index([folder], work / "real-faiss-2", replay, progress=False))
        print(f"  store write with vectors known (no model): faiss {t_faiss:.1f} s", end="")
        if admin:
            from index.pg_store import PgStore
            from tests.pg_server import new_database

            pg = PgStore.connect(new_database(admin, "bench_real_w"), must_exist=False)
            _, t_pg = timed(lambda: build_index([folder], "", replay, store=pg, progress=False))
            print(f", postgres {t_pg:.1f} s", end="")
            pg.close()
        print()
    _real_recall(state, emb, work, admin, n_queries, rng)


def _real_recall(state: Any, emb: Any, work: Path, admin: str, n_queries: int, rng: Any) -> None:
    """Recall of the ANN indexes on real MiniLM vectors; queries: the first sentence of random chunks."""
    from index.store import IndexStore
    from index.store_faiss import FaissStore

    flat = FaissStore.from_state(state)
    picks = rng.choice(len(state.chunks), size=n_queries, replace=False)
    kq = [state.chunks[i].text.split(". ")[0][:200].strip() for i in picks]
    qv = emb.embed(kq)
    print(f"  search on real vectors ({len(state.chunks)} chunks, {n_queries} queries = first sentences):")
    exact, _ = measure("faiss flat", flat, qv, kq, None)
    hnsw_state = IndexStore(
        state.embed_model, state.dim, state.documents, state.chunks, np.array(state.vectors),
        ann_threshold=0,
    )  # fmt: skip
    measure("faiss hnsw", FaissStore.from_state(hnsw_state), qv, kq, exact)
    if admin:
        from index.pg_store import PgStore
        from tests.pg_server import new_database

        pg = PgStore.connect(new_database(admin, "bench_real"), must_exist=False)
        pg.apply(_state_changes(state))
        measure("postgres", pg, qv, kq, exact)
        pg.close()


QUALITY_CORPORA = {"seeds": "seeds", "handbook": "eval/corpora/handbook", "pydocs": "eval/corpora/pydocs"}


def section_quality(work: Path, budgets: list[int]) -> None:
    """Keyword and fused ranking on the answerable questions of the three eval corpora, per ranking.

    A hit is answer-bearing when it comes from a gold source and holds a reference answer (normalised, as the
    eval scores answers). `ts_rank_idf@B` ranks at most B rows per query: small budgets force the pruning
    that large tables need, so its effect on quality shows on small corpora too.
    """
    import json

    from eval.metrics import answer_matches
    from index.builder import build_index
    from index.embedder import load_embedder
    from index.pg_store import KEYWORD_BUDGET, PgStore
    from index.store_faiss import FaissStore
    from rag.retriever import HybridRetriever
    from tests.pg_server import new_database

    emb = load_embedder("")
    admin = _postgres(work)
    print("\n## ranking quality: answer-bearing passage first (top 3) over the answerable questions")
    head = f"{'corpus':<9} {'n':>3} {'store / ranking':<24} {'keyword @1':>10} {'@3':>5}"
    print(head + f" {'fused @1':>9} {'@3':>5}")
    for corpus, folder in QUALITY_CORPORA.items():
        items = [
            json.loads(line)
            for f in sorted((ROOT / "eval" / "datasets").glob(f"{corpus}.*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        items = [x for x in items if x["answers"] and not x.get("history")]
        ix = work / f"quality-{corpus}"
        build_index([ROOT / folder], ix, emb, progress=False)
        faiss = FaissStore(ix)
        pg = PgStore.connect(new_database(admin, f"quality_{corpus}"), must_exist=False)
        pg.apply(_state_changes(faiss.state))  # the same chunks and vectors, no second embedding run
        setups: list[tuple[str, Any, str, int]] = [("faiss bm25s", faiss, "", 0)]
        setups += [(f"postgres {r}", pg, r, KEYWORD_BUDGET) for r in ("ts_rank", "ts_rank_cd", "ts_rank_idf")]
        setups += [(f"postgres ts_rank_idf@{b}", pg, "ts_rank_idf", b) for b in budgets]
        for name, store, rank, budget in setups:
            if rank:
                store.rank, store.keyword_budget = rank, budget
            retriever = HybridRetriever(store, emb)

            def good(c: Any, x: dict[str, Any]) -> bool:
                return c.source.rsplit("/", 1)[-1] in {s.rsplit("/", 1)[-1] for s in x["sources"]} and (
                    answer_matches(c.text, x["answers"])
                )

            kw = [[good(c, x) for c, _ in store.search_keyword(x["question"], 3)] for x in items]
            fu = [[good(h.chunk, x) for h in retriever.search(x["question"], 3)] for x in items]
            share = [100 * float(np.mean([any(r[:k]) for r in rows])) for rows in (kw, fu) for k in (1, 3)]
            print(
                f"{corpus:<9} {len(items):>3} {name:<24} {share[0]:>9.0f}% {share[1]:>4.0f}% "
                f"{share[2]:>8.0f}% {share[3]:>4.0f}%",
                flush=True,
            )
        pg.close()
        faiss.close()


def _state_changes(state: Any) -> Any:
    """A FAISS store's state as one full-rebuild ChangeSet (to load the same index into PostgreSQL)."""
    from index.store_api import ChangeSet

    return ChangeSet(
        state.embed_model, state.dim, dict(state.settings), list(state.documents.values()),
        list(state.chunks), np.array(state.vectors), state._keys(), replace_all=True,
    )  # fmt: skip


def section_replicas(work: Path, seconds: float, clients: int) -> None:
    import asyncio
    import json
    import subprocess

    import httpx

    from index.builder import build_index
    from index.embedder import load_embedder
    from index.pg_store import PgStore
    from tests.pg_server import new_database

    url = new_database(_postgres(work), "bench_replicas")
    store = PgStore.connect(url, must_exist=False)
    build_index([ROOT / "seeds"], "", load_embedder(""), store=store, progress=False)
    store.close()
    lines = (ROOT / "eval" / "datasets" / "seeds.jsonl").read_text().splitlines()
    questions = [json.loads(x)["question"] for x in lines]
    env = {**os.environ, "RAG_STORE": "postgres", "RAG_DATABASE_URL": url, "RAG_BACKEND": "extractive"}
    print(f"\n## replicas: `rag serve` (extractive) on one database, {clients} clients, {seconds:.0f} s each")
    for replicas in (1, 2):
        ports = [7890 + i for i in range(replicas)]
        procs = [
            subprocess.Popen(
                [str(Path(sys.executable).parent / "rag"), "serve", "--port", str(p)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for p in ports
        ]
        try:
            for p in ports:
                _wait_health(f"http://127.0.0.1:{p}/api/health")
            lat: list[float] = []
            errors = 0

            async def client(
                i: int, http: httpx.AsyncClient, stop: float, ports: list[int], lat: list[float]
            ) -> None:
                nonlocal errors
                n = i
                while time.perf_counter() < stop:
                    port = ports[n % len(ports)]
                    t0 = time.perf_counter()
                    r = await http.post(
                        f"http://127.0.0.1:{port}/api/ask", json={"question": questions[n % len(questions)]}
                    )
                    lat.append(time.perf_counter() - t0)
                    errors += r.status_code != 200
                    n += clients

            async def run(ports: list[int], lat: list[float]) -> None:
                async with httpx.AsyncClient(timeout=60) as http:
                    stop = time.perf_counter() + seconds
                    await asyncio.gather(*(client(i, http, stop, ports, lat) for i in range(clients)))

            t0 = time.perf_counter()
            asyncio.run(run(ports, lat))
            wall = time.perf_counter() - t0
            print(
                f"  {replicas} replica(s): {len(lat) / wall:6.1f} answers/s, p50 {pct(lat, 50):7.0f} ms, "
                f"p99 {pct(lat, 99):7.0f} ms, {errors} errors of {len(lat)}"
            )
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)


def _wait_health(url: str, timeout: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"no answer from {url} within {timeout:.0f} s")


def _query_embedding_ms() -> tuple[float, float]:
    from index.embedder import load_embedder

    emb = load_embedder("")
    emb.embed(["warm up"])
    lat = latencies(lambda i: emb.embed([f"how do I read file number {i} line by line"]), 30)
    return pct(lat, 50), pct(lat, 90)


def _postgres(work: Path) -> str:
    from tests.pg_server import start

    url, server = start(work / "pg")
    import atexit

    if server is not None:
        atexit.register(server.cleanup)
    return url


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--sections", nargs="+", default=["startup", "search", "index"])
    parser.add_argument("--ann-threshold", type=int, default=200_000)
    parser.add_argument("--stores", nargs="+", default=["faiss", "hnsw", "postgres"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--budgets", type=int, nargs="*", default=[10, 3], help="quality: small ts_rank_idf budgets to try"
    )
    parser.add_argument(
        "--rankings",
        nargs="+",
        default=["ts_rank_idf"],
        help="search: PostgreSQL keyword rankings to time; ts_rank_idf@2000 sets its row budget",
    )
    parser.add_argument(
        "--full-upto", type=int, default=100_000, help="search: above this size, FAISS flat + PG keyword only"
    )
    parser.add_argument(
        "--build-memory", default="2GB", help="PostgreSQL maintenance_work_mem for the HNSW build"
    )
    parser.add_argument("--reuse", action="store_true", help="index: reuse the embedded corpus in --work")
    parser.add_argument("--seconds", type=float, default=30.0, help="load per replica setting (replicas)")
    parser.add_argument(
        "--corpus",
        default="/usr/share/doc/python3/html/library",
        help="HTML folder for `index` (Debian: apt-get install python3-doc)",
    )
    parser.add_argument("--files", type=int, default=166, help="pages of --corpus (166 = 5,204 chunks)")
    parser.add_argument("--work", default="", help="scratch folder (default: a temp folder)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-store-"))
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} (shared machine: figures are rough)")
    if "startup" in args.sections:
        section_startup(args.sizes, work, args.ann_threshold)
    if "bm25" in args.sections:
        section_bm25(args.sizes, work)
    if "index" in args.sections:
        section_index(work, Path(args.corpus), args.files, args.stores, min(args.queries, 200), args.reuse)
    if "quality" in args.sections:
        section_quality(work, args.budgets)
    if "replicas" in args.sections:
        section_replicas(work, args.seconds, 16)
    if "search" in args.sections:
        section_search(
            args.sizes, work, args.stores, args.queries, args.rankings, args.build_memory, args.full_upto
        )
    if "build" in args.sections:
        section_search(
            args.sizes,
            work,
            args.stores,
            args.queries,
            [],
            args.build_memory,
            args.full_upto,
            build_only=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
