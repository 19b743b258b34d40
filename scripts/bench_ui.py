"""Benchmark the served chat on loopback: time to first source and first token, /api/search throughput,
and 8 concurrent chat users.

Starts the real server in-process (real index, real pipeline, default `local` backend unless --backend),
warms the model up, then measures:
  1. submit -> first source event and -> first answer token, through the streaming API (median of --runs);
  2. requests/s that POST /api/search sustains (--seconds, --threads client threads, keep-alive);
  3. --users concurrent chat users through Gradio's queue (gradio_client, the chat page's own endpoint):
     all answered? errors? their wait times.
Only loopback traffic. Usage: python scripts/bench_ui.py [--backend local] [--runs 5] [--users 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "How much did Microsoft invest in Inflection?",
    "Which cloud provider has exclusive rights for OpenAI until 2032?",
    "Who leads Microsoft AI?",
    "How much did Microsoft invest in OpenAI in 2019?",
    "How much did Microsoft invest in G42?",
    "Why is Microsoft diversifying beyond OpenAI?",
    "Which company did Microsoft partner with besides OpenAI?",
    "What happened when Sam Altman was dismissed?",
]


def stream_once(url: str, question: str, backend: str) -> tuple[float, float | None, float]:
    """(ms to sources, ms to first token or None, ms to final) for one streamed ask."""
    t0 = time.perf_counter()
    t_src = t_tok = None
    kind = None
    with httpx.stream(
        "POST", url + "/api/ask/stream", json={"question": question, "backend": backend}, timeout=300
    ) as r:
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
                now = (time.perf_counter() - t0) * 1000
                if kind == "sources" and t_src is None:
                    t_src = now
                elif kind == "token" and t_tok is None:
                    t_tok = now
                elif kind == "error":
                    raise RuntimeError(f"stream error for {question!r}")
    return t_src or 0.0, t_tok, (time.perf_counter() - t0) * 1000


def search_rps(url: str, seconds: float, threads: int) -> tuple[float, int, int]:
    done, errors = [0], [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            n = i
            while time.perf_counter() < stop:
                r = c.post("/api/search", json={"query": QUESTIONS[n % len(QUESTIONS)], "k": 5})
                with lock:
                    if r.status_code == 200:
                        done[0] += 1
                    else:
                        errors[0] += 1
                n += 1

    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return done[0] / (time.perf_counter() - t0), done[0], errors[0]


def chat_users(url: str, users: int) -> list[dict]:
    from gradio_client import Client

    out: list[dict] = []
    lock = threading.Lock()
    start = threading.Barrier(users)

    def user(i: int) -> None:
        client = Client(url + "/", verbose=False)
        start.wait()
        t0 = time.perf_counter()
        row = {"user": i, "question": QUESTIONS[i % len(QUESTIONS)]}
        try:
            history, _ = client.predict(row["question"], [], api_name="/chat")
            text = json.dumps(history[-1]["content"], ensure_ascii=False)
            row["answered"] = "rag-done" in text
            row["error"] = "⚠" in text
            row["refused"] = "rag-cite" not in text
        except Exception as err:  # a failure is a result here
            row["answered"], row["error"], row["exception"] = False, True, repr(err)
        row["wait_s"] = time.perf_counter() - t0
        with lock:
            out.append(row)

    ts = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(900)
    return sorted(out, key=lambda r: r["wait_s"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default=None, help="generator (default: RAG_BACKEND or local)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--users", type=int, default=8)
    args = ap.parse_args()

    from fakes_ui import ServerThread

    from rag.config import Config
    from rag.pipeline import build_pipeline
    from ui.server import build_server

    config = Config.from_env(backend=args.backend)
    backend = config.backend
    t0 = time.perf_counter()
    pipeline = build_pipeline(config)
    pipeline.warm_up(backend)
    print(
        f"pipeline ready in {time.perf_counter() - t0:.1f} s (backend={backend}, "
        f"concurrency={config.concurrency}, index={config.index_dir})"
    )
    with ServerThread(build_server(pipeline, env={})) as url:
        stream_once(url, "Who leads Microsoft AI?", backend)  # first request: warm caches and code paths
        src, tok, fin = [], [], []
        for i in range(args.runs):
            s, t, f = stream_once(url, QUESTIONS[i % len(QUESTIONS)], backend)
            src.append(s)
            fin.append(f)
            if t is not None:
                tok.append(t)
        print(
            f"\n[1] submit -> first source / first token / verified answer, median of {args.runs} "
            f"(streaming API, {backend}):"
        )
        print(
            f"    first source  {statistics.median(src):8.0f} ms   (min {min(src):.0f}, max {max(src):.0f})"
        )
        if tok:
            print(
                f"    first token   {statistics.median(tok):8.0f} ms"
                f"   (min {min(tok):.0f}, max {max(tok):.0f})"
            )
        print(
            f"    final answer  {statistics.median(fin):8.0f} ms   (min {min(fin):.0f}, max {max(fin):.0f})"
        )

        rps, n, errs = search_rps(url, args.seconds, args.threads)
        print(
            f"\n[2] POST /api/search: {rps:.1f} requests/s over {args.seconds:.0f} s with {args.threads} "
            f"client threads ({n} ok, {errs} errors)"
        )

        t0 = time.perf_counter()
        rows = chat_users(url, args.users)
        wall = time.perf_counter() - t0
        answered = sum(r["answered"] for r in rows)
        errors = sum(r["error"] for r in rows)
        waits = [r["wait_s"] for r in rows]
        print(
            f"\n[3] {args.users} concurrent chat users (gradio_client -> /chat, "
            f"concurrency={config.concurrency}):"
        )
        print(
            f"    answered {answered}/{len(rows)}, errors {errors}, wall {wall:.1f} s; waits: "
            + ", ".join(f"{w:.1f}" for w in waits)
            + " s"
        )
        print(
            f"    median wait {statistics.median(waits):.1f} s, max {max(waits):.1f} s; refused "
            f"{sum(r.get('refused', False) for r in rows)}"
        )
        for r in rows:
            if r.get("exception"):
                print(f"    user {r['user']}: {r['exception']}")
    return 0 if answered == len(rows) and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
