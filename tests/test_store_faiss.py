"""FAISS store at scale: the saved BM25 scores like a rebuilt one, HNSW above the threshold, checksums."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.builder import build_index
from index.errors import IndexCorruptError
from index.fake import HashingEmbedder
from index.store import MANIFEST, IndexStore, build_bm25
from index.store_faiss import FaissStore
from index.tokens import keyword_tokens

pytestmark = pytest.mark.unit


@pytest.fixture
def built(tmp_path: Path, seeds_dir: Path) -> Path:
    build_index([seeds_dir], tmp_path / "ix", HashingEmbedder(), progress=False)
    return tmp_path / "ix"


def test_saved_bm25_scores_like_a_rebuilt_one(built: Path) -> None:
    store = IndexStore.load(built)
    assert store._bm25_dir is not None  # loaded from disk, not re-tokenised
    rebuilt = build_bm25([f"{c.title}\n{c.text}" if c.title else c.text for c in store.chunks])
    for query in ["Microsoft invest Inflection", "OpenAI board crisis", "Phi-3 models G42"]:
        tokens = keyword_tokens(query)
        np.testing.assert_allclose(
            store.keyword_index().get_scores(tokens), rebuilt.get_scores(tokens), rtol=1e-6
        )


def test_damaged_bm25_file_fails_its_checksum(built: Path) -> None:
    manifest = json.loads((built / MANIFEST).read_text())
    assert manifest["bm25_sha256"]
    name = sorted(manifest["bm25_sha256"])[0]
    f = built / manifest["data"] / name
    f.write_bytes(f.read_bytes() + b" ")
    with pytest.raises(IndexCorruptError, match=r"damaged.*rag index"):
        IndexStore.load(built)


def test_an_index_without_saved_bm25_still_searches(built: Path) -> None:
    manifest = json.loads((built / MANIFEST).read_text())
    manifest.pop("bm25_sha256")  # as written before BM25 was saved
    (built / MANIFEST).write_text(json.dumps(manifest))
    hits = FaissStore(built).search_keyword("Inflection", 3)
    assert hits and hits[0][0].source == "000_cd01c28a230eedd7.txt"


def test_hnsw_above_the_threshold(tmp_path: Path, seeds_dir: Path) -> None:
    store = FaissStore(tmp_path / "ix", must_exist=False, ann_threshold=10)
    build_index([seeds_dir], tmp_path / "ix", HashingEmbedder(), store=store, progress=False)
    assert json.loads((tmp_path / "ix" / MANIFEST).read_text())["faiss_index"] == "hnsw"
    loaded = FaissStore(tmp_path / "ix")
    state = loaded.state
    assert (
        state is not None
        and "HNSW" in type(__import__("faiss").downcast_index(state.faiss_index.index)).__name__
    )
    exact = np.argsort(-(state.vectors @ state.vectors[4]))[:5]
    found = [state._by_id[c.id] for c, _ in loaded.search_dense(state.vectors[4], 5)]
    assert found[0] == 4 and len(set(found) & set(exact.tolist())) >= 4


class _Crashing(HashingEmbedder):
    """Embeds `limit` texts, then dies like a killed run."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def embed(self, texts):  # type: ignore[no-untyped-def]
        if self.calls + len(texts) > self.limit:
            raise KeyboardInterrupt
        return super().embed(texts)


def test_a_crashed_run_resumes_without_re_embedding(tmp_path: Path, seeds_dir: Path) -> None:
    import index.builder as builder

    ix = tmp_path / "ix"
    total = build_index([seeds_dir], tmp_path / "probe", HashingEmbedder(), progress=False).chunks
    crashing = _Crashing(limit=8)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(builder, "_embed_batches", _small_batches(builder._embed_batches))
        with pytest.raises(KeyboardInterrupt):
            build_index([seeds_dir], ix, crashing, progress=False)
    assert not (ix / MANIFEST).exists() and crashing.calls == 8  # nothing committed, 8 vectors stashed
    emb = HashingEmbedder()
    report = build_index([seeds_dir], ix, emb, progress=False)
    assert emb.calls == report.added == total - 8 and report.chunks == total
    assert not (ix / ".embed-stash").exists()  # cleared after the commit
    assert FaissStore(ix).search_keyword("Inflection", 1)


def _small_batches(real):  # type: ignore[no-untyped-def]
    def run(texts, embedder, progress, keys=None, stash=None, batch=64):  # type: ignore[no-untyped-def]
        return real(texts, embedder, progress, keys, stash, batch=4)

    return run


def test_keyword_index_from_id_arrays_scores_like_bm25s_own_string_path() -> None:
    """build_bm25 feeds bm25s int32 id arrays (index.store.token_ids) to save memory; the scores must be
    those of bm25s's documented input, lists of token strings, including for an empty chunk."""
    import bm25s

    texts = ["Paid leave is 26 days a year.", "", "Leave carried over expires on 31 March.",
             "Sick leave: tell your line manager before 10:00.", "Parking permits are for staff only."]
    ours = build_bm25(texts)
    theirs = bm25s.BM25()
    theirs.index([keyword_tokens(t) or ["\x00"] for t in texts], show_progress=False)
    for query in ("leave", "carried over leave March", "parking staff", "nothing matches this"):
        tokens = keyword_tokens(query)
        np.testing.assert_allclose(ours.get_scores(tokens), theirs.get_scores(tokens), rtol=1e-6)
    assert ours.get_scores(keyword_tokens("leave")).argmax() in (0, 2, 3)


def test_a_first_build_keeps_the_change_sets_vectors_without_a_copy(tmp_path: Path) -> None:
    """At a million chunks a copy of the vectors is 1.5 GB of peak memory; a first build needs none, and
    a later write that appends must still store every row in chunk order."""
    from index.records import Chunk, Document
    from index.store_api import ChangeSet

    def change(name: str, rows: np.ndarray) -> ChangeSet:
        doc = Document(f"d-{name}", f"{name}.txt", name, f"Text about {name}.")
        chunk = Chunk(f"{len(name):016x}", doc.id, doc.source, name, doc.text, 0, len(doc.text))
        return ChangeSet("fake", 4, {}, [doc], [chunk], rows, [f"k-{name}"])

    store = FaissStore(tmp_path / "ix", must_exist=False)
    first = change("alpha", np.eye(4, dtype=np.float32)[:1])
    store.apply(first)
    assert store.state is not None and np.shares_memory(store.state.vectors, first.vectors)
    store.apply(change("beta", np.eye(4, dtype=np.float32)[1:2]))
    assert [c.source for c in store.chunks] == ["alpha.txt", "beta.txt"]
    np.testing.assert_array_equal(store.state.vectors, np.eye(4, dtype=np.float32)[:2])
    reopened = FaissStore(tmp_path / "ix")
    assert reopened.search_dense(np.eye(4, dtype=np.float32)[1], 1)[0][0].source == "beta.txt"
