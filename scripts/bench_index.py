"""Benchmark of indexing and retrieval over seeds/ with the real model. Prints figures; asserts nothing.

Reports: model load, cold build, incremental builds (no change; one file changed), embedding throughput
of our embedder against calling the model's `encode` directly on the same chunks, in-process search
latency (median over 100 queries, with the query-vector cache off and on), whole `rag search` command
latency (median of 5 runs, start-up included) and peak memory. Run: `python scripts/bench_index.py`.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUERIES = [
    "How much did Microsoft invest in Inflection?",
    "How much did Microsoft invest in G42?",
    "Which companies have adopted Microsoft's Phi-3 models?",
    "How long did it take to resolve the OpenAI leadership crisis?",
    "When was Sam Altman ousted from OpenAI?",
    "Until when is Azure the exclusive cloud provider for OpenAI?",
    "What share of its earnings does OpenAI pay to Microsoft?",
    "When did Microsoft first invest in OpenAI and how much?",
    "Which xAI model did Microsoft integrate into its cloud services?",
    "Who is driving Microsoft's push to become independent from OpenAI?",
]


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(ROOT / "seeds"))
    parser.add_argument("--runs", type=int, default=5, help="subprocess runs of `rag search`")
    args = parser.parse_args()

    from index.builder import build_index
    from index.chunker import embed_text
    from index.embedder import load_embedder
    from rag.config import Config
    from rag.retriever import open_retriever

    work = Path(tempfile.mkdtemp(prefix="bench-index-"))
    corpus = work / "corpus"
    shutil.copytree(args.corpus, corpus)
    index_dir = work / "ix"
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f}; python {sys.version.split()[0]}")

    emb = load_embedder("")
    _, load_s = timed(lambda: emb.dim)
    print(f"model load (import + weights):        {load_s:8.2f} s")

    report, _ = timed(lambda: build_index([corpus], index_dir, emb, progress=False))
    print(f"cold build:                           {report.seconds:8.2f} s   ({report.summary()})")
    report = build_index([corpus], index_dir, emb, progress=False)
    print(f"incremental, no change:               {report.seconds:8.3f} s   ({report.summary()})")
    changed = sorted(corpus.iterdir())[0]
    changed.write_text(changed.read_text(encoding="utf-8") + "\nA sentence added for the benchmark.\n")
    report = build_index([corpus], index_dir, emb, progress=False)
    print(f"incremental, one file changed:        {report.seconds:8.3f} s   ({report.summary()})")

    retriever = open_retriever(Config.from_env({}, index_dir=str(index_dir)))
    texts = [embed_text(c) for c in retriever.store.chunks]
    model = emb.model  # type: ignore[attr-defined]
    ours, direct = [], []
    for _ in range(3):
        ours.append(timed(lambda: emb.embed(texts))[1])
        direct.append(
            timed(lambda: model.encode(texts, batch_size=emb.batch_size, normalize_embeddings=True))[1]  # type: ignore[attr-defined]
        )
    o, d = statistics.median(ours), statistics.median(direct)
    print(f"embedding {len(texts)} chunks, ours:          {len(texts) / o:8.1f} chunks/s (median of 3)")
    print(f"embedding {len(texts)} chunks, model.encode:  {len(texts) / d:8.1f} chunks/s")
    print(f"ours / direct time ratio:             {o / d:8.3f}")

    retriever.search("warm up", 5)
    for label, cached in (
        ("unique queries (embeds each)", False),
        ("repeated queries (cached vector)", True),
    ):
        times = []
        for i in range(100):
            q = QUERIES[i % len(QUERIES)] if cached else f"{QUERIES[i % len(QUERIES)]} #{i}"
            times.append(timed(lambda q=q: retriever.search(q, 5))[1])
        print(
            f"search in-process, {label}: median {statistics.median(times) * 1000:7.2f} ms, "
            f"p90 {sorted(times)[89] * 1000:7.2f} ms"
        )
    qv = retriever.query_vector(QUERIES[0])
    fusion = [timed(lambda: retriever.store.search_dense(qv, 30))[1] for _ in range(100)]
    print(f"  of which FAISS dense top-30:        median {statistics.median(fusion) * 1000:7.3f} ms")

    rag = shutil.which("rag", path=str(Path(sys.executable).parent))
    cmd = [rag] if rag else [sys.executable, "-m", "rag"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    runs = []
    for i in range(args.runs):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [*cmd, "--index-dir", str(index_dir), "search", QUERIES[i % len(QUERIES)], "-k", "3"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
        )
        runs.append(time.perf_counter() - t0)
        if proc.returncode:
            print(proc.stderr, file=sys.stderr)
            return 1
    print(
        f"`rag search` whole command:           median {statistics.median(runs):6.2f} s over {args.runs} runs"
    )

    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak memory: this process {self_mb:.0f} MiB; largest `rag search` process {child_mb:.0f} MiB")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
