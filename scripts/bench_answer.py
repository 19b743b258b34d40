"""Answer latency per local model, side by side in one run: sources, first token, verified answer.

Usage: python scripts/bench_answer.py [--models qwen2.5-coder-1.5b,qwen2.5-coder-0.5b] [--per-corpus 6]
                                      [--suite eval/suite.json] [--index-root .rag-eval]
A model may carry a llama.cpp batch size (`RAG_LLM_BATCH`) after an @, to compare batch sizes the same way:
    --models qwen2.5-coder-1.5b@512,qwen2.5-coder-1.5b@64,qwen2.5-coder-1.5b@32

Asks the first N questions of each corpus's *tuning* half (answerable and not) through the real pipeline
with each model (the judge is the same model), after a warm-up that loads it and fills the prompt caches, and
prints medians and p90 of: time to the `Sources` event, to the first streamed token, and to the verified
final answer (the answer is one sentence, so this is also the first verified sentence), plus the ratio of
each model's medians to the first model's. Quality per model comes from `rag eval --suite` runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eval.dataset import load_dataset  # noqa: E402
from eval.suite import ensure_index, load_suite  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.pipeline import build_pipeline  # noqa: E402
from rag.records import Final, Sources, Token, Turn  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="qwen2.5-coder-1.5b,qwen2.5-coder-0.5b")
    ap.add_argument("--per-corpus", type=int, default=6)
    ap.add_argument("--suite", default=str(ROOT / "eval" / "suite.json"))
    ap.add_argument("--index-root", default=str(ROOT / ".rag-eval"))
    args = ap.parse_args()
    base = Config.from_env(backend="local")
    corpora = load_suite(args.suite)
    questions = []
    for corpus in corpora:
        config = ensure_index(corpus, base, args.index_root)
        for item in load_dataset(ROOT / corpus.datasets["tune"])[: args.per_corpus]:
            questions.append((config, item))
    rows = {}
    for variant in args.models.split(","):
        model, _, batch = variant.partition("@")
        timings: dict[str, list[float]] = {"sources": [], "first_token": [], "verified": []}
        answered = 0
        for i, (config, item) in enumerate(questions):
            size = int(batch or config.llm_batch)
            pipeline = build_pipeline(config.replace(llm_model=model, llm_batch=size))
            if i == 0:
                pipeline.warm_up()
                pipeline.ask("What is this about?")  # fills the answer and judge prompt caches
            history = [Turn(role, content) for role, content in item.history]
            start = time.perf_counter()
            first = None
            for event in pipeline.stream(item.question, history):
                now = (time.perf_counter() - start) * 1000
                if isinstance(event, Sources):
                    timings["sources"].append(now)
                elif isinstance(event, Token) and first is None:
                    first = now
                elif isinstance(event, Final):
                    timings["first_token"].append(first if first is not None else now)
                    timings["verified"].append(now)
                    answered += not event.answer.refused
        rows[variant] = {k: (statistics.median(v), _pct(v, 90)) for k, v in timings.items()}
        print(f"{variant}: {len(questions)} questions, {answered} answered")
    first_model = next(iter(rows))
    print(f"\n{'model':<26} {'sources p50/p90 ms':>20} {'first token p50/p90 ms':>24} "
          f"{'verified p50/p90 ms':>22} {'ratio first/verified':>22}")
    for model, r in rows.items():
        ratio = (r["first_token"][0] / rows[first_model]["first_token"][0],
                 r["verified"][0] / rows[first_model]["verified"][0])
        print(f"{model:<26} {r['sources'][0]:>9.0f} / {r['sources'][1]:<8.0f} {r['first_token'][0]:>11.0f} / "
              f"{r['first_token'][1]:<10.0f} {r['verified'][0]:>10.0f} / {r['verified'][1]:<9.0f} "
              f"{ratio[0]:>10.2f} / {ratio[1]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
