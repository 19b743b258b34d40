"""Real MiniLM + real FAISS + BM25 over seeds/: the answer-bearing passage of each question is in the top 3.

Questions are written from the articles; `needle` is a phrase only the answer-bearing passage holds.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest

from rag.config import Config
from rag.retriever import HybridRetriever, open_retriever

pytestmark = pytest.mark.integration

QUESTIONS = [
    # 000: Microsoft's AI Investments and OpenAI Crisis
    ("000", "How much did Microsoft put into Inflection?", "$650 million"),
    ("000", "How much did Microsoft put into G42?", "$1.5 billion"),
    ("000", "Which companies have adopted Microsoft's Phi-3 models?", "BlackRock"),
    # 001: Microsoft's AI Balancing Act
    ("001", "How many days did the OpenAI leadership crisis last?", "within just ten days"),
    ("001", "In which month was Sam Altman pushed out of OpenAI?", "November 2023"),
    (
        "001",
        "What contributed to Microsoft's financial results over the past five years?",
        "cloud computing market",
    ),
    # 002: A Strategic AI Partnership Evolution for Microsoft
    ("002", "Until which year does Azure stay OpenAI's exclusive cloud?", "2032"),
    ("002", "What share of its earnings does OpenAI pay to Microsoft?", "20%"),
    ("002", "Under the revamped deal, which valuation might Microsoft go beyond?", "$4 trillion"),
    ("002", "How big is the global AI market expected to be by 2030?", "$1.8 trillion"),
    # 003: the OpenAI-Microsoft partnership under strain
    ("003", "When did Microsoft first invest in OpenAI and how much?", "$1 billion"),
    ("003", "Who did Microsoft hire to lead its consumer AI division?", "co-founder of Google's DeepMind"),
    ("003", "Which xAI model did Microsoft integrate into its cloud services?", "Grok"),
    (
        "003",
        "Which authorities have opened inquiries into the Microsoft-OpenAI partnership?",
        "United Kingdom",
    ),
    # 004: Clarus summary of Der Standard
    ("004", "Who is driving Microsoft's push to become independent from OpenAI?", "Microsoft's AI chief"),
    ("004", "What is the Clarus summary's primary source?", "Der Standard"),
    ("004", "What would a break with Microsoft mean for OpenAI's finances?", "financial crisis"),
]


@pytest.fixture(scope="module")
def retriever(real_config: Config) -> HybridRetriever:
    return open_retriever(real_config)


@pytest.mark.parametrize(("article", "question", "needle"), QUESTIONS, ids=[q for _, q, _ in QUESTIONS])
def test_answer_passage_in_top_3(
    retriever: HybridRetriever, article: str, question: str, needle: str
) -> None:
    hits = retriever.search(question, 3)
    found = [h for h in hits if h.chunk.source.startswith(article) and needle in h.chunk.text]
    assert found, f"{needle!r} not in top 3: " + json.dumps(
        [(h.chunk.source, h.chunk.text[:80]) for h in hits]
    )


def test_every_article_has_two_questions() -> None:
    counts = {a: sum(1 for x, _, _ in QUESTIONS if x == a) for a in ("000", "001", "002", "003", "004")}
    assert min(counts.values()) >= 2


def test_offsets_point_into_the_original_files(retriever: HybridRetriever, seeds_dir: Path) -> None:
    for h in retriever.search("Microsoft OpenAI partnership tensions", 10):
        original = (seeds_dir / h.chunk.source).read_text(encoding="utf-8")
        assert original[h.chunk.start : h.chunk.end] == h.chunk.text
        assert set(h.scores) == {"dense", "bm25"}


def test_chrome_never_comes_back(retriever: HybridRetriever) -> None:
    for h in retriever.search("please email our friendly team, comments, recent posts, see all", 10):
        assert "admin@aisultana.com" not in h.chunk.text and "Recent Posts" not in h.chunk.text


def test_search_is_fast(retriever: HybridRetriever) -> None:
    retriever.search("warm up", 3)
    times = []
    for _, question, _ in QUESTIONS:
        t0 = time.perf_counter()
        retriever.search(question, 5)
        times.append(time.perf_counter() - t0)
    assert statistics.median(times) < 1.0  # generous (shared CI machines); scripts/bench_index.py has figures
