"""The `Store` contract: every backend (FAISS folder, real PostgreSQL + pgvector) passes the same tests.

Like Haystack's DocumentStoreBaseTests: one class, parametrized over the backends; a new backend is done
when it passes. PostgreSQL is a real server (tests/pg_server.py) started once per session.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from index.builder import build_index
from index.errors import IndexCorruptError, IndexMissingError
from index.fake import HashingEmbedder
from index.records import Document
from index.store_api import ChangeSet, Store
from index.stores import check_store, open_store
from rag.retriever import HybridRetriever

pytestmark = pytest.mark.integration

INFLECTION = "000_cd01c28a230eedd7.txt"


@pytest.fixture(params=["faiss", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Store]]:
    """`opener(must_exist=False)` opens (another handle on) one store location of the backend."""
    opened: list[Store] = []
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        where = {"database_url": url}
    else:
        where = {"index_dir": str(tmp_path / "ix")}

    def open_(must_exist: bool = False, **options: object) -> Store:
        store = open_store(request.param, must_exist=must_exist, **where, **options)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield open_
    for s in opened:
        s.close()


@pytest.fixture
def corpus(tmp_path: Path, seeds_dir: Path) -> Path:
    folder = tmp_path / "corpus"
    shutil.copytree(seeds_dir, folder)
    return folder


def _build(store: Store, corpus: Path, emb: HashingEmbedder | None = None, **kw: object):  # type: ignore[no-untyped-def]
    return build_index([corpus], "", emb or HashingEmbedder(), store=store, progress=False, **kw)  # type: ignore[arg-type]


class TestStoreContract:
    def test_empty_store(self, opener: Callable[..., Store]) -> None:
        store = opener()
        assert store.info() is None and store.document(INFLECTION) is None
        assert store.stored_documents() == {} and store.known_vectors(["x"]) == {}
        with pytest.raises(IndexMissingError, match="rag index"):
            opener(must_exist=True)

    def test_build_then_read_back(self, opener: Callable[..., Store], corpus: Path) -> None:
        store = opener()
        report = _build(store, corpus)
        info = store.info()
        assert info is not None and (info.embed_model, info.dim) == ("fake-hash", 256)
        assert info.settings["chunk_tokens"] == 200 and info.settings["chunk_overlap"] == 40
        assert (info.documents, info.chunks) == (5, report.chunks)
        doc = store.document(INFLECTION)
        assert doc is not None and doc.text == (corpus / INFLECTION).read_text(encoding="utf-8")
        stored = store.stored_documents()
        assert set(stored) == {p.name for p in corpus.iterdir()}
        assert sum(len(s.chunk_ids) for s in stored.values()) == report.chunks
        chunks = store.chunks_of(INFLECTION)
        assert [c.id for c in chunks] == list(stored[INFLECTION].chunk_ids)
        assert all(c.text == doc.text[c.start : c.end] for c in chunks)
        assert [c.start for c in chunks] == sorted(c.start for c in chunks)
        again = opener(must_exist=True)  # another process opening the same location
        assert again.info() == info

    def test_dense_search_and_similarities(self, opener: Callable[..., Store], corpus: Path) -> None:
        store = opener()
        _build(store, corpus)
        from index.chunker import embed_text
        from index.records import content_hash

        chunk = store.chunks_of(INFLECTION)[1]
        vec = store.known_vectors([content_hash(embed_text(chunk))])[content_hash(embed_text(chunk))]
        np.testing.assert_allclose(np.linalg.norm(vec), 1.0, rtol=1e-5)
        (top, cos), *rest = store.search_dense(vec, 5)
        assert top.id == chunk.id and cos == pytest.approx(1.0, abs=1e-4)
        assert [s for _, s in rest] == sorted((s for _, s in rest), reverse=True) and len(rest) == 4
        ids = [c.id for c, _ in rest]
        expected = [s for _, s in rest]
        np.testing.assert_allclose(store.similarities(vec, ids), expected, atol=1e-4)

    def test_keyword_search(self, opener: Callable[..., Store], corpus: Path) -> None:
        store = opener()
        _build(store, corpus)
        hits = store.search_keyword("Inflection investment", 5)
        assert hits and hits[0][0].source == INFLECTION and "Inflection" in hits[0][0].text
        scores = [s for _, s in hits]
        assert all(s > 0 for s in scores) and scores == sorted(scores, reverse=True)
        assert store.search_keyword("the of and", 5) == []  # stop words only
        assert store.search_keyword("zzyzx", 5) == []

    def test_incremental_add_change_delete(self, opener: Callable[..., Store], corpus: Path) -> None:
        store = opener()
        first = _build(store, corpus)
        second = _build(store, corpus)
        assert (second.added, second.removed, second.reused) == (0, 0, first.chunks)
        (corpus / "new.md").write_text("# Falcons\n\nFalcons fly fast. They hunt birds.\n")
        target = corpus / "004_a29f32fd67d13242.txt"
        target.write_text(target.read_text().replace("Mustafa Suleyman", "Mustafa S."))
        (corpus / "003_05a5782cf9efb8ba.txt").unlink()
        emb = HashingEmbedder()
        report = _build(store, corpus, emb)
        assert (report.docs_added, report.docs_changed, report.docs_removed) == (1, 1, 1)
        assert 0 < report.added == emb.calls < first.chunks // 2 and report.removed > 0
        info = store.info()
        assert info is not None and (info.documents, info.chunks) == (5, report.chunks)
        assert store.document("003_05a5782cf9efb8ba.txt") is None
        assert store.search_keyword("falcons hunt", 3)[0][0].source == "new.md"
        assert all("Mustafa Suleyman" not in c.text for c in store.chunks_of(target.name))

    def test_failed_write_leaves_previous_state(self, opener: Callable[..., Store], corpus: Path) -> None:
        store = opener()
        _build(store, corpus)
        before = store.info()
        doc = Document("d1", "bad.txt", "Bad", "Some text about zebras.")
        from index.records import Chunk

        chunk = Chunk("c1", "d1", "bad.txt", "Bad", doc.text, 0, len(doc.text))
        broken = ChangeSet(
            "fake-hash", 256, dict(before.settings) if before else {}, [doc], [chunk],
            np.ones((1, 3), np.float32), ["k1"], removed=[INFLECTION],
        )  # fmt: skip
        with pytest.raises(Exception):  # noqa: B017 - each backend raises its own (ValueError, DataError)
            with store.writer():
                store.apply(broken)
        for s in (store, opener(must_exist=True)):
            assert s.info() == before and s.document(INFLECTION) is not None
            assert s.document("bad.txt") is None and s.search_keyword("zebras", 3) == []

    def test_other_model(self, opener: Callable[..., Store], corpus: Path) -> None:
        store = opener()
        _build(store, corpus)
        with pytest.raises(IndexCorruptError, match="RAG_EMBED_MODEL=fake-hash"):
            check_store(store, "all-MiniLM-L6-v2", None, "here")
        with pytest.raises(IndexCorruptError, match="384"):
            check_store(store, "fake-hash", 384, "here")
        emb = HashingEmbedder(dim=64, name="fake-64")
        report = _build(store, corpus, emb)
        assert report.reused == 0 and emb.calls == report.chunks
        info = store.info()
        assert info is not None and (info.embed_model, info.dim, info.chunks) == (
            "fake-64",
            64,
            report.chunks,
        )
        assert len(store.search_dense(emb.embed(["Inflection"])[0], 3)) == 3

    def test_another_process_sees_a_reindex(self, opener: Callable[..., Store], corpus: Path) -> None:
        reader = opener()
        writer = opener()
        _build(writer, corpus)
        reader = opener(must_exist=True, check_every=0.0) if reader.kind == "faiss" else reader
        assert reader.search_keyword("falcons", 3) == []
        (corpus / "new.md").write_text("# Falcons\n\nFalcons fly fast.\n")
        _build(writer, corpus)
        reader.refresh()
        assert reader.search_keyword("falcons", 3)[0][0].source == "new.md"
        assert reader.document("new.md") is not None

    def test_hybrid_retriever_over_the_store(self, opener: Callable[..., Store], corpus: Path) -> None:
        store = opener()
        _build(store, corpus)
        hits = HybridRetriever(store, HashingEmbedder()).search(
            "How much did Microsoft put into Inflection?", 3
        )
        assert [h.rank for h in hits] == [1, 2, 3] and hits[0].chunk.source == INFLECTION
        assert "$650 million" in " ".join(h.chunk.text for h in hits)
        assert all(h.scores["bm25"] >= 0 and -1 <= h.scores["dense"] <= 1 for h in hits)
        assert hits[0].score >= hits[1].score >= hits[2].score
