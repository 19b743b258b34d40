"""Benchmark of the stores (FAISS folder, PostgreSQL + pgvector) side by side; prints, asserts nothing.

Sections (`--sections`, default all but replicas):
  startup  save, then load (open + first keyword search) a FAISS index of N synthetic chunks; peak RSS
  search   dense / keyword / fused latency p50/p90 and recall@10 of ANN against exact, per store and size
  index    indexing throughput (chunks/s) of `build_index` on a real corpus against raw `model.encode`
  replicas `rag serve` (extractive) x1 vs x2 on one database under 16 loopback clients
Synthetic chunks: texts drawn from the seeds' vocabulary (Zipf-like), vectors from 2,000 clusters in a
48-d latent space projected to 384-d (unit length), queries = perturbed corpus vectors; real embeddings
(MiniLM on a real corpus) are in `index` and `realann`. Every run is bounded; run under `nice -n 10`. Example:
  nice -n 10 .venv/bin/python scripts/bench_store.py --sizes 10000 100000 --sections startup search
"""

from __future__ import annotations

import argparse
import gc
import os
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


def vocabulary() -> list[str]:
    from index.tokens import _TOKEN

    words: set[str] = set()
    for f in (ROOT / "seeds").iterdir():
        words.update(_TOKEN.findall(f.read_text(encoding="utf-8").lower()))
    return sorted(words)


def synthetic(n: int, seed: int = 0, n_queries: int = 0) -> tuple[list[str], np.ndarray]:
    """n chunk texts (~120 words) and n unit vectors with cluster structure (then n_queries query vectors)."""
    rng = np.random.default_rng(seed)
    vocab = np.array(vocabulary())
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    words = rng.choice(vocab, size=(n, 120), p=weights / weights.sum())
    texts = [" ".join(row) for row in words]
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
    print(f"{'chunks':>9} {'save s':>8} {'disk MB':>8} {'load s':>8} {'1st kw s':>9} {'RSS MB':>8}")
    for n in sizes:
        texts, vecs = synthetic(n)
        ix = work / f"faiss-{n}"
        store = FaissStore(ix, must_exist=False, ann_threshold=ann_threshold)
        changes = change_set(texts, vecs)
        t0 = time.perf_counter()
        store.apply(changes)
        save_s = time.perf_counter() - t0
        store.close()
        gc.collect()
        disk = sum(f.stat().st_size for f in ix.rglob("*") if f.is_file()) / 1e6
        out = _subprocess_load(ix)
        print(f"{n:>9} {save_s:>8.1f} {disk:>8.0f} {out['load']:>8.2f} {out['kw']:>9.2f} {out['rss']:>8.0f}")


def _subprocess_load(ix: Path) -> dict[str, float]:
    import json
    import subprocess

    code = (
        f"import json,sys,time,resource; sys.path.insert(0, {str(ROOT)!r})\n"
        "t=time.perf_counter(); from index.store_faiss import FaissStore\n"
        f"s=FaissStore({str(ix)!r}); a=time.perf_counter()-t\n"
        "t=time.perf_counter(); s.search_keyword('microsoft investment', 10); b=time.perf_counter()-t\n"
        "print(json.dumps({'load': a, 'kw': b, "
        "'rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024}))"
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
    rng = np.random.default_rng(seed)
    vocab = vocabulary()
    mid = vocab[: max(50, len(vocab))]
    return [" ".join(rng.choice(mid, size=int(rng.integers(3, 7)))) + f" q{i}" for i in range(n)]


def latencies(fn: Callable[[int], Any], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def recall_at_10(found: list[list[str]], exact: list[list[str]]) -> float:
    return float(np.mean([len(set(f[:10]) & set(e[:10])) / 10 for f, e in zip(found, exact, strict=True)]))


def measure(name: str, store: Any, qv: np.ndarray, kq: list[str], exact: list[list[str]] | None) -> list[str]:
    from rag.retriever import HybridRetriever

    n = len(qv)
    found: list[list[str]] = []
    dense = latencies(lambda i: found.append([c.id for c, _ in store.search_dense(qv[i], 30)]), n)
    kw = latencies(lambda i: store.search_keyword(kq[i], 30), n)
    retriever = HybridRetriever(store, _Lookup({q: qv[i] for i, q in enumerate(kq)}))  # type: ignore[arg-type]
    for q in kq:
        retriever.query_vector(q)  # cached: the fused figure is retrieval only
    fused = latencies(lambda i: retriever.search(kq[i], 5), n)
    rec = f"{recall_at_10(found, exact):.3f}" if exact is not None else "exact"
    print(
        f"  {name:<16} dense p50/p90 {pct(dense, 50):7.2f}/{pct(dense, 90):7.2f} ms  "
        f"keyword {pct(kw, 50):7.2f}/{pct(kw, 90):7.2f} ms  "
        f"fused {pct(fused, 50):7.2f}/{pct(fused, 90):7.2f} ms  recall@10 {rec}"
    )
    return [ids for ids in found]


def section_search(sizes: list[int], work: Path, stores: list[str], n_queries: int) -> None:
    from index.store_faiss import FaissStore

    print(f"\n## search ({n_queries} queries, k=30 per side, fused top 5; query embedding excluded)")
    embed_ms = _query_embedding_ms()
    print(f"  query embedding (MiniLM, one query, cached model): p50 {embed_ms:.1f} ms")
    admin = _postgres(work) if "postgres" in stores else ""
    for n in sizes:
        texts, both = synthetic(n, n_queries=n_queries)
        vecs, qv = both[:n], both[n:]
        kq = keyword_queries(n_queries)
        changes = change_set(texts, vecs)
        print(f"{n} chunks:")
        flat = FaissStore(work / f"s-flat-{n}", must_exist=False, ann_threshold=10**12)
        _, t = timed(lambda: flat.apply(changes))  # noqa: B023
        print(f"  faiss flat: build+save {t:.1f} s")
        exact = measure("faiss flat", flat, qv, kq, None)
        if "hnsw" in stores:
            hnsw = FaissStore(work / f"s-hnsw-{n}", must_exist=False, ann_threshold=0)
            t0 = time.perf_counter()
            hnsw.apply(changes)
            print(f"  faiss hnsw: build+save {time.perf_counter() - t0:.1f} s")
            measure("faiss hnsw", hnsw, qv, kq, exact)
            hnsw.close()
        if admin:
            from index.pg_store import PgStore
            from tests.pg_server import new_database

            url = new_database(admin, f"bench_{n}")
            pg = PgStore.connect(url, must_exist=False)
            _, t = timed(lambda: pg.apply(changes))  # noqa: B023
            import psycopg

            with psycopg.connect(url) as conn:
                size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 1e6  # type: ignore[index]
            print(f"  postgres: COPY + HNSW build + GIN {t:.1f} s, database {size:.0f} MB")
            measure("postgres", pg, qv, kq, exact)
            pg.close()
        flat.close()
        gc.collect()


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
    from index.store_api import ChangeSet
    from index.store_faiss import FaissStore

    flat = FaissStore.from_state(state)
    picks = rng.choice(len(state.chunks), size=n_queries, replace=False)
    kq = [state.chunks[i].text.split(". ")[0][:200].strip() for i in picks]
    qv = emb.embed(kq)
    print(f"  search on real vectors ({len(state.chunks)} chunks, {n_queries} queries = first sentences):")
    exact = measure("faiss flat", flat, qv, kq, None)
    hnsw_state = IndexStore(
        state.embed_model, state.dim, state.documents, state.chunks, np.array(state.vectors),
        ann_threshold=0,
    )  # fmt: skip
    measure("faiss hnsw", FaissStore.from_state(hnsw_state), qv, kq, exact)
    if admin:
        from index.pg_store import PgStore
        from tests.pg_server import new_database

        pg = PgStore.connect(new_database(admin, "bench_real"), must_exist=False)
        changes = ChangeSet(
            state.embed_model, state.dim, dict(state.settings), list(state.documents.values()),
            list(state.chunks), np.array(state.vectors), state._keys(), replace_all=True,
        )  # fmt: skip
        pg.apply(changes)
        measure("postgres", pg, qv, kq, exact)
        pg.close()


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


def _query_embedding_ms() -> float:
    from index.embedder import load_embedder

    emb = load_embedder("")
    emb.embed(["warm up"])
    return pct(latencies(lambda i: emb.embed([f"how much did company {i} invest"]), 20), 50)


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
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} (shared machine: figures are rough)")
    if "startup" in args.sections:
        section_startup(args.sizes, work, args.ann_threshold)
    if "index" in args.sections:
        section_index(work, Path(args.corpus), args.files, args.stores, min(args.queries, 200), args.reuse)
    if "replicas" in args.sections:
        section_replicas(work, args.seconds, 16)
    if "search" in args.sections:
        section_search(args.sizes, work, args.stores, args.queries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
