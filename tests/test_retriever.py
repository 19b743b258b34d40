"""HybridRetriever with the fake embedder: fusion, scores, dedupe, keyword matching of names and figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.builder import build_index
from index.errors import IndexCorruptError, IndexMissingError, QueryError
from index.fake import HashingEmbedder
from index.records import Chunk, Document, content_hash
from index.store import IndexStore
from index.tokens import keyword_tokens
from rag.config import Config
from rag.retriever import RRF_K, HybridRetriever, open_retriever

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory: pytest.TempPathFactory, seeds_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("fake-ix")
    build_index([seeds_dir], out, HashingEmbedder(), progress=False)
    return out


@pytest.fixture(scope="module")
def retriever(fake_index: Path) -> HybridRetriever:
    return open_retriever(Config.from_env({}, index_dir=str(fake_index), embed_model="fake-hash"))


def _store(texts: list[str], vectors: np.ndarray, source: str = "a.txt") -> IndexStore:
    text = "\n".join(texts) + "\n"
    doc = Document(content_hash(text), source, "T", text)
    chunks, pos = [], 0
    for t in texts:
        chunks.append(Chunk(content_hash(source, t, str(pos)), doc.id, source, "", t, pos, pos + len(t)))
        pos += len(t) + 1
    return IndexStore("fake", vectors.shape[1], {source: doc}, chunks, vectors.astype(np.float32))


class _FixedEmbedder:
    name, dim = "fake", 2

    def embed(self, texts):  # type: ignore[no-untyped-def]
        return np.array([[1.0, 0.0]] * len(texts), dtype=np.float32)


def test_rrf_fuses_both_lists() -> None:
    """Chunk 0 is first by dense only, chunk 1 first by BM25 only, chunk 2 second in both: it wins."""
    fillers = [f"filler text number {i}" for i in range(35)]  # push chunk 1 out of the dense top 30
    texts = ["nothing relevant here at all", "zebra zebra zebra", "zebra appears once in this one", *fillers]
    vecs = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.436]] + [[0.8, 0.6]] * len(fillers))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    r = HybridRetriever(_store(texts, vecs), _FixedEmbedder(), fusion="rrf")
    hits = r.search("zebra", 3)
    assert hits[0].chunk.text == "zebra appears once in this one"
    assert hits[0].score == pytest.approx(2 / (RRF_K + 2))
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].scores["dense"] == pytest.approx(0.9 / np.linalg.norm([0.9, 0.436]), rel=1e-4)
    assert hits[0].scores["bm25"] > 0
    no_kw = next(h for h in hits if h.chunk.text.startswith("nothing"))
    assert no_kw.scores["bm25"] == 0.0
    assert hits == sorted(hits, key=lambda h: -h.score)


def test_score_fusion_weighs_normalised_scores() -> None:
    """Dense best (cos 1.0, no keyword) vs keyword best (cos 0.0): a passage good at both beats them."""
    texts = ["nothing relevant here at all", "zebra zebra zebra", "zebra appears once in this one"]
    vecs = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.436]])
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    r = HybridRetriever(_store(texts, vecs), _FixedEmbedder())
    hits = r.search("zebra", 3)
    assert hits[0].chunk.text == "zebra appears once in this one"
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    by_text = {h.chunk.text: h for h in hits}
    assert by_text["nothing relevant here at all"].score == pytest.approx(0.5)  # dense 1, bm25 0
    assert by_text["zebra zebra zebra"].score == pytest.approx(0.5, abs=0.01)  # dense 0, bm25 best
    dense_only = HybridRetriever(_store(texts, vecs), _FixedEmbedder(), dense_weight=1.0)
    assert dense_only.search("zebra", 1)[0].chunk.text == "nothing relevant here at all"


def test_unknown_fusion() -> None:
    with pytest.raises(ValueError, match="rrf"):
        HybridRetriever(_store(["a b"], np.array([[1.0, 0.0]])), _FixedEmbedder(), fusion="max")


def test_identical_text_is_deduplicated() -> None:
    texts = ["the same passage about falcons", "the same passage about falcons", "another passage on eagles"]
    vecs = np.eye(3)[:, :2] + 0.1
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    r = HybridRetriever(_store(texts, vecs), _FixedEmbedder())
    texts_out = [h.chunk.text for h in r.search("falcons passage", 5)]
    assert texts_out.count("the same passage about falcons") == 1


def test_empty_query_raises(retriever: HybridRetriever) -> None:
    for q in ("", "   ", "\n"):
        with pytest.raises(QueryError):
            retriever.search(q)


def test_k_and_ranks(retriever: HybridRetriever) -> None:
    for k in (1, 3, 7):
        hits = retriever.search("Microsoft OpenAI partnership", k)
        assert len(hits) == k and [h.rank for h in hits] == list(range(1, k + 1))
        assert len({h.chunk.id for h in hits}) == k
    assert retriever.search("anything", 0) == []
    assert len(retriever.search("Microsoft")) == 5  # Config.k


def test_no_heavily_overlapping_hits(retriever: HybridRetriever) -> None:
    hits = retriever.search("Microsoft OpenAI partnership investment", 10)
    for i, a in enumerate(hits):
        for b in hits[i + 1 :]:
            if a.chunk.source == b.chunk.source:
                overlap = min(a.chunk.end, b.chunk.end) - max(a.chunk.start, b.chunk.start)
                assert overlap <= 0.5 * min(len(a.chunk.text), len(b.chunk.text))


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("$650 million", "$650 million"),
        ("650", "$650 million"),
        ("G42", "G42"),
        ("Phi-3", "Phi-3"),
        ("xAI's Grok", "Grok"),
    ],
)
def test_names_and_figures_match(retriever: HybridRetriever, query: str, needle: str) -> None:
    hits = retriever.search(query, 3)
    assert needle in hits[0].chunk.text
    assert hits[0].scores["bm25"] > 0


def test_keyword_tokens() -> None:
    assert keyword_tokens("Microsoft's $650 million, G42") == ["microsoft", "650", "million", "g42"]
    assert keyword_tokens("$1.5 billion") == ["1.5", "billion"]
    assert keyword_tokens("1,000 investments") == ["1000", "investment"]
    assert keyword_tokens("the of and") == []


def test_exposes_store_and_embedder(retriever: HybridRetriever) -> None:
    assert retriever.embedder.name == "fake-hash"
    assert retriever.store.document("000_cd01c28a230eedd7.txt") is not None


def test_open_retriever_errors(tmp_path: Path, fake_index: Path) -> None:
    with pytest.raises(IndexMissingError, match="Run `rag index` first"):
        open_retriever(Config.from_env({}, index_dir=str(tmp_path / "none"), embed_model="fake-hash"))
    with pytest.raises(IndexCorruptError, match="RAG_EMBED_MODEL=fake-hash"):
        open_retriever(Config.from_env({}, index_dir=str(fake_index)), embedder=HashingEmbedder(name="other"))
