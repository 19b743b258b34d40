"""Quick answer-quality and speed bench over seeds/: correctness, citation support, declines, latency.

Usage: python scripts/bench_answer.py [--backends local,extractive] [--index-dir DIR] [--json OUT]
Builds the seeds index in a temporary folder when --index-dir is not given. For each backend it prints the
share answered correctly (an expected figure/name appears and the answer is not a refusal), the share of
citations whose cited passage is from an expected article and contains the sentence's numbers, the share of
unanswerable questions declined, and median / p90 time to first token and total time.
The eval harness (eval/) holds the larger gold set; this is the quick check issue 3 asks for.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.citations import parse_claims  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.grounding import numbers_of  # noqa: E402
from rag.pipeline import build_pipeline  # noqa: E402

# (question, expected strings (any), expected article prefixes); paraphrases marked with (p).
ANSWERABLE: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("How much did Microsoft invest in Inflection?", ("650 million",), ("000",)),
    ("What sum did Microsoft put into Inflection AI?", ("650 million",), ("000",)),  # (p)
    ("How much did Microsoft invest in G42?", ("1.5 billion",), ("000",)),
    ("How big was Microsoft's stake in the Abu Dhabi firm G42?", ("1.5 billion",), ("000",)),  # (p)
    ("Where is G42 based?", ("Abu Dhabi",), ("000",)),
    ("How much has Microsoft invested in OpenAI?", ("13 billion", "1 billion"), ("000", "001", "003")),
    ("Which companies have adopted Microsoft's Phi-3 models?", ("BlackRock", "Epic"), ("000",)),
    ("Which OpenAI model do the Phi-3 models outperform?", ("GPT-3.5",), ("000",)),
    ("When was Sam Altman ousted from OpenAI?", ("November 2023",), ("001",)),
    ("How long did it take Microsoft to resolve the OpenAI leadership crisis?", ("ten days",), ("001",)),
    ("Who is the CEO of Microsoft?", ("Nadella",), ("001",)),
    ("What is Microsoft's own family of generative AI models called?", ("Phi-3",), ("001", "000")),
    ("How much is the Microsoft-OpenAI partnership under renegotiation worth?", ("14 billion",), ("002",)),
    ("Until when is Azure the exclusive cloud provider for OpenAI?", ("2032",), ("002",)),
    ("What share of its earnings does OpenAI give to Microsoft?", ("20%",), ("002",)),
    ("What valuation could Microsoft exceed under the revamped deal?", ("4 trillion",), ("002",)),
    ("By when does Microsoft aim to have superintelligence capabilities?", ("2026",), ("002",)),
    ("How much will the global AI market be worth by 2030?", ("1.8 trillion",), ("002",)),
    ("How much is OpenAI committing to Microsoft's Azure?", ("250 billion",), ("002",)),  # (p)
    ("Which AI companies besides OpenAI is Microsoft working with?", ("Anthropic", "Cohere", "Mistral"),
     ("002", "000", "001")),
    ("When did Microsoft make its first investment in OpenAI?", ("2019",), ("003",)),
    ("How much was Microsoft's initial investment in OpenAI?", ("1 billion",), ("003",)),
    ("Until what year do the existing Microsoft-OpenAI contracts run?", ("2030",), ("003",)),
    ("Which xAI model has Microsoft integrated into its cloud services?", ("Grok",), ("003",)),
    ("Which companies has OpenAI engaged to build out its infrastructure?", ("SoftBank", "Oracle"), ("003",)),
    ("Who was hired to lead Microsoft's consumer AI division?", ("Suleyman",), ("003", "004")),
    ("Who is the CEO of Microsoft AI?", ("Suleyman",), ("004",)),
    ("Where did Mustafa Suleyman work before joining Microsoft?", ("DeepMind", "Deepmind"), ("004", "003")),
    ("What is the primary source of the Clarus summary?", ("Der Standard",), ("004",)),
]
UNANSWERABLE = [
    "Who won the 2022 FIFA World Cup?",
    "What does a Microsoft 365 Copilot subscription cost?",
    "How much did Microsoft invest in Mistral?",
    "How much did Microsoft invest in Anthropic?",
    "What is the capital of Australia?",
    "When was Microsoft founded?",
    "How many employees does OpenAI have?",
    "What is the price of the Phi-3 models?",
]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def citation_support(answer, prefixes: tuple[str, ...]) -> tuple[int, int]:
    """(supported, total) citations: the cited chunk is from an expected article and holds the numbers."""
    by_n = {c.n: c for c in answer.citations}
    chunks = {h.chunk.id: h.chunk for h in answer.retrieved}
    good = total = 0
    for claim in parse_claims(answer.text):
        for n in claim.cited:
            total += 1
            c = by_n.get(n)
            if c is None:
                continue
            text = chunks[c.chunk_id].text if c.chunk_id in chunks else c.quote
            if c.source.startswith(prefixes) and numbers_of(claim.text) <= numbers_of(text):
                good += 1
    return good, total


def run(backend: str, pipeline, verbose: bool) -> dict:
    rows = []
    pipeline.warm_up(backend)
    for question, expected, prefixes in ANSWERABLE:
        a = pipeline.ask(question, backend=backend)
        ok = not a.refused and any(e.lower() in a.text.lower() for e in expected)
        good, total = citation_support(a, prefixes)
        rows.append({"q": question, "kind": "answerable", "correct": ok, "cit_good": good, "cit_total": total,
                     "refused": a.refused, "answer": a.text, "timings": a.timings_ms, "notes": list(a.notes)})
    for question in UNANSWERABLE:
        a = pipeline.ask(question, backend=backend)
        good, total = citation_support(a, ())
        rows.append({"q": question, "kind": "unanswerable", "correct": a.refused, "cit_good": good,
                     "cit_total": total, "refused": a.refused, "answer": a.text, "timings": a.timings_ms,
                     "notes": list(a.notes)})
    if verbose:
        for r in rows:
            mark = "ok " if r["correct"] else "BAD"
            print(f"  {mark} [{r['timings']['first_token']:6.0f} ms] {r['q']} -> {r['answer'][:110]}")
    answerable = [r for r in rows if r["kind"] == "answerable"]
    unanswerable = [r for r in rows if r["kind"] == "unanswerable"]
    first = [r["timings"]["first_token"] / 1000 for r in rows]
    total = [r["timings"]["total"] / 1000 for r in rows]
    cit_total = sum(r["cit_total"] for r in rows)
    return {
        "backend": backend,
        "questions": len(rows),
        "answered_correctly": sum(r["correct"] for r in answerable) / len(answerable),
        "citations_supported": sum(r["cit_good"] for r in rows) / cit_total if cit_total else float("nan"),
        "citations": cit_total,
        "unanswerable_declined": sum(r["correct"] for r in unanswerable) / len(unanswerable),
        "answerable_refused": sum(r["refused"] for r in answerable) / len(answerable),
        "first_token_s_median": statistics.median(first),
        "first_token_s_p90": _pct(first, 0.9),
        "total_s_median": statistics.median(total),
        "total_s_p90": _pct(total, 0.9),
        "rows": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="local,extractive")
    parser.add_argument("--index-dir", help="an index over seeds/ (default: build one in a temp folder)")
    parser.add_argument("--json", help="write all rows and summaries to this file")
    parser.add_argument("-q", "--quiet", action="store_true", help="summaries only")
    args = parser.parse_args()
    index_dir = args.index_dir
    if not index_dir:
        from index.builder import build_index
        from index.embedder import load_embedder

        index_dir = tempfile.mkdtemp(prefix="bench-index-")
        build_index([ROOT / "seeds"], index_dir, load_embedder(""), progress=False)
    pipeline = build_pipeline(Config.from_env(index_dir=index_dir))
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        t0 = time.perf_counter()
        print(f"== {backend}")
        res = run(backend, pipeline, not args.quiet)
        results.append(res)
        print(f"{backend}: {res['questions']} questions in {time.perf_counter() - t0:.0f} s | "
              f"correct {res['answered_correctly']:.0%} | "
              f"citations supported {res['citations_supported']:.0%} "
              f"({res['citations']}) | unanswerable declined {res['unanswerable_declined']:.0%} | "
              f"answerable refused {res['answerable_refused']:.0%} | first token median "
              f"{res['first_token_s_median']:.2f} s, p90 {res['first_token_s_p90']:.2f} s | total median "
              f"{res['total_s_median']:.2f} s, p90 {res['total_s_p90']:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
