"""Benchmark of the stores (FAISS folder, PostgreSQL + pgvector) side by side. Prints figures; asserts nothing.

Sections (`--sections`, default all but replicas):
  startup  save, then load (open + first keyword search) a FAISS index of N synthetic chunks; peak RSS
  search   dense / keyword / fused latency p50/p90 and recall@10 of ANN against exact, per store and size
  index    indexing throughput (chunks/s) of `build_index` on a real corpus against raw `model.encode`
  replicas `rag serve` (extractive) x1 vs x2 on one database under 16 loopback clients
Synthetic chunks: texts drawn from the seeds' vocabulary (Zipf-like), vectors from a mixture of 2,000
Gaussian clusters in 384-d (unit length), queries = perturbed corpus vectors; real embeddings are in
`index`. Every run is bounded; run under `nice -n 10`. Example:
  nice -n 10 .venv/bin/python scripts/bench_store.py --sizes 10000 100000 --sections startup search
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
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


def synthetic(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """n chunk texts (~120 words) and n unit vectors with cluster structure."""
    rng = np.random.default_rng(seed)
    vocab = np.array(vocabulary())
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    words = rng.choice(vocab, size=(n, 120), p=weights / weights.sum())
    texts = [" ".join(row) for row in words]
    centers = rng.standard_normal((2000, DIM)).astype(np.float32)
    vecs = centers[rng.integers(0, len(centers), n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return texts, vecs


def queries(vecs: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = vecs[rng.integers(0, len(vecs), n)] + 0.3 * rng.standard_normal((n, DIM)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


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
            chunks.append(Chunk(content_hash(source, p, str(start)), doc.id, source, doc.title, p, start,
                                start + len(p)))
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
        _, save_s = timed(lambda: store.apply(change_set(texts, vecs)))  # noqa: B023
        del store, texts
        gc.collect()
        disk = sum(f.stat().st_size for f in ix.rglob("*") if f.is_file()) / 1e6
        out = _subprocess_load(ix)
        print(f"{n:>9} {save_s:>8.1f} {disk:>8.0f} {out['load']:>8.2f} {out['kw']:>9.2f} {out['rss']:>8.0f}")


def _subprocess_load(ix: Path) -> dict[str, float]:
    import json
    import subprocess

    code = (
        "import json,sys,time,resource; sys.path.insert(0, %r)\n"
        "t=time.perf_counter(); from index.store_faiss import FaissStore; s=FaissStore(%r); a=time.perf_counter()-t\n"
        "t=time.perf_counter(); s.search_keyword('microsoft investment', 10); b=time.perf_counter()-t\n"
        "print(json.dumps({'load': a, 'kw': b, "
        "'rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024}))"
    ) % (str(ROOT), str(ix))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--sections", nargs="+", default=["startup", "search", "index"])
    parser.add_argument("--ann-threshold", type=int, default=200_000)
    parser.add_argument("--work", default="", help="scratch folder (default: a temp folder)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-store-"))
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} (shared machine: figures are rough)")
    if "startup" in args.sections:
        section_startup(args.sizes, work, args.ann_threshold)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
