"""Prompt speed and cancel latency of the local model per llama.cpp batch size (`RAG_LLM_BATCH`).

Usage: python scripts/bench_batch.py [--batches 512,128,64,32,16] [--rounds 3] [--tokens 800] [--model NAME]

One model instance is loaded per batch size; the rounds interleave the sizes, so a change of load on a
shared machine hits every size alike. Per round and size:
- prompt: an ~800-token prompt (text of the seed documents) with the prompt cache off and one output
  token: prompt tokens/s from llama.cpp's own timings, and the median gap between two progress chunks
  (one batch: about the longest a cancel waits for the batch in flight);
- cancel: the same prompt abandoned at its first progress chunk, then a one-token follow-up request:
  the time from the cancel to the follow-up's end ("free after"), and the follow-up alone on an idle
  model for comparison.
Prints medians per size (and the worst "free after"), and each size's prompt speed as a ratio to the
first (largest) size's. Whether a cancel waits for a whole batch is a race: llama.cpp may start the next
batch before the cancel reaches it, so the worst case is about one batch and the median much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import Config  # noqa: E402
from rag.generators.local import _threads, load_model  # noqa: E402
from rag.generators.model_files import resolve_model_path  # noqa: E402

FOLLOW_UP = {"messages": [{"role": "user", "content": "Hi"}], "stream": True, "max_tokens": 1}


def _prompt(tokens: int) -> str:
    """About `tokens` tokens of real prose (~4.75 characters each), behind a nonce so nothing is cached."""
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt")))
    return f"[{uuid.uuid4().hex}] Summarise in one sentence:\n" + text[: tokens * 19 // 4]


def _body(tokens: int) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": _prompt(tokens)}],
        "stream": True,
        "max_tokens": 1,
        "cache_prompt": False,
        "return_progress": True,
    }


def prompt_run(server: Any, tokens: int) -> dict[str, float]:
    """Tokens/s of one uncached prompt and the median gap between its progress chunks (ms)."""
    stamps: list[float] = []
    timings: dict[str, Any] = {}

    def on_chunk(chunk: Any) -> bool:
        if isinstance(chunk, dict):
            if "prompt_progress" in chunk:
                stamps.append(time.perf_counter())
            timings.update(chunk.get("timings") or {})
        return False

    server.handle_chat_completions(_body(tokens), on_chunk)
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)] or [0.0]
    return {
        "tok_s": float(timings.get("prompt_per_second", 0.0)),
        "prompt_n": float(timings.get("prompt_n", 0)),
        "batch_ms": 1000 * statistics.median(gaps),
    }


def _follow_up(server: Any) -> None:
    server.handle_chat_completions(dict(FOLLOW_UP), lambda chunk: False)


def cancel_run(server: Any, tokens: int) -> dict[str, float]:
    """Abandon a prompt after its first batch; ms until a one-token follow-up has finished."""
    cancelled_at = 0.0

    def on_chunk(chunk: Any) -> bool:
        nonlocal cancelled_at
        if isinstance(chunk, dict) and (chunk.get("prompt_progress") or {}).get("processed", 0) > 0:
            cancelled_at = time.perf_counter()
            return True
        return False

    server.handle_chat_completions(_body(tokens), on_chunk)
    if not cancelled_at:
        return {}
    _follow_up(server)
    free_after = 1000 * (time.perf_counter() - cancelled_at)
    start = time.perf_counter()
    _follow_up(server)
    return {"free_ms": free_after, "follow_up_ms": 1000 * (time.perf_counter() - start)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", default="512,128,64,32,16")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=800)
    ap.add_argument("--model", default="", help="packaged model name or GGUF path (default: RAG_LLM_MODEL)")
    args = ap.parse_args()
    config = Config.from_env()
    path = resolve_model_path(args.model or config.llm_model, config.cache_dir)
    batches = [int(b) for b in args.batches.split(",")]
    servers = {b: load_model(path, config.llm_ctx, _threads(config), b).server for b in batches}
    rows: dict[int, dict[str, list[float]]] = {b: {} for b in batches}
    print(f"model {path.name}, {_threads(config)} threads, load average {os.getloadavg()[0]:.1f}", flush=True)
    for r in range(args.rounds):
        for b in batches:
            result = {**prompt_run(servers[b], args.tokens), **cancel_run(servers[b], args.tokens)}
            for name, value in result.items():
                rows[b].setdefault(name, []).append(value)
            shown = ", ".join(f"{k} {v:.0f}" for k, v in result.items())
            print(f"round {r + 1} batch {b}: {shown} (load {os.getloadavg()[0]:.1f})", flush=True)
    med = {b: {k: statistics.median(v) for k, v in row.items()} for b, row in rows.items()}
    base = med[batches[0]]
    print(f"\nmedians of {args.rounds} rounds; ratios to batch {batches[0]}")
    print("| batch | prompt tokens | prompt tok/s | ratio | one batch (ms) | free after cancel (ms) | "
          "worst free (ms) | follow-up alone (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for b in batches:
        m, nan = med[b], float("nan")
        worst = max(rows[b].get("free_ms", [nan]))
        ratio = m["tok_s"] / base["tok_s"] if base.get("tok_s") else nan
        print(f"| {b} | {m['prompt_n']:.0f} | {m['tok_s']:.1f} | {ratio:.2f} | {m['batch_ms']:.0f} | "
              f"{m.get('free_ms', nan):.0f} | {worst:.0f} | {m.get('follow_up_ms', nan):.0f} |")
    print(f"load average at the end {os.getloadavg()[0]:.1f} (2-core machine shared with other work)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
