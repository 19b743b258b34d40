"""Store: JSON + FAISS round trip without pickle, checksums, model/dim mismatch, atomic saves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.builder import build_index
from index.errors import IndexCorruptError, IndexMissingError
from index.fake import HashingEmbedder
from index.store import DOCSTORE_FILE, FAISS_FILE, MANIFEST, IndexStore

pytestmark = pytest.mark.unit


@pytest.fixture
def built(tmp_path: Path, seeds_dir: Path) -> Path:
    out = tmp_path / "ix"
    build_index([seeds_dir], out, HashingEmbedder(), progress=False)
    return out


def _data(index_dir: Path) -> Path:
    return index_dir / json.loads((index_dir / MANIFEST).read_text())["data"]


def test_round_trip(built: Path, seeds_dir: Path) -> None:
    store = IndexStore.load(built, embedder_name="fake-hash", dim=256)
    assert len(store.documents) == 5 and len(store.chunks) == store.vectors.shape[0]
    doc = store.document("000_cd01c28a230eedd7.txt")
    assert doc is not None and doc.text == (seeds_dir / doc.source).read_text(encoding="utf-8")
    for c in store.chunks:
        assert c.text == store.documents[c.source].text[c.start : c.end]
    np.testing.assert_allclose(np.linalg.norm(store.vectors, axis=1), 1.0, rtol=1e-5)
    manifest = store.manifest
    assert manifest["embed_model"] == "fake-hash" and manifest["dim"] == 256
    assert manifest["chunk_tokens"] == 200 and manifest["chunk_overlap"] == 40
    assert manifest["documents"] == 5 and manifest["chunks"] == len(store.chunks)
    assert set(manifest["sha256"]) == {FAISS_FILE, DOCSTORE_FILE} and manifest["created"]


def test_dense_search_finds_own_vector(built: Path) -> None:
    store = IndexStore.load(built)
    row, score = store.search_dense(store.vectors[3], 1)[0]
    assert row == 3 and score == pytest.approx(1.0, abs=1e-5)


def test_no_pickle_on_disk(built: Path) -> None:
    for f in _data(built).iterdir():
        head = f.read_bytes()[:2]
        assert head[:1] != b"\x80", f"{f.name} looks like a pickle"
    json.loads((_data(built) / DOCSTORE_FILE).read_text())  # plain JSON
    src = Path(__file__).resolve().parent.parent / "index"
    assert not any("import pickle" in p.read_text() for p in src.glob("*.py"))


def test_missing_index(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match=r"No index at .*Run `rag index` first\."):
        IndexStore.load(tmp_path / "nothing")


def test_other_model_names_the_fix(built: Path) -> None:
    with pytest.raises(IndexCorruptError) as err:
        IndexStore.load(built, embedder_name="all-MiniLM-L6-v2")
    msg = str(err.value)
    assert "fake-hash" in msg and "all-MiniLM-L6-v2" in msg and "RAG_EMBED_MODEL=fake-hash" in msg
    assert "rag index" in msg


def test_other_dim(built: Path) -> None:
    with pytest.raises(IndexCorruptError, match="384"):
        IndexStore.load(built, embedder_name="fake-hash", dim=384)


@pytest.mark.parametrize("name", [FAISS_FILE, DOCSTORE_FILE])
def test_damaged_file_fails_checksum(built: Path, name: str) -> None:
    f = _data(built) / name
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(IndexCorruptError, match=r"damaged.*Rebuild it with `rag index`"):
        IndexStore.load(built)


def test_deleted_data_file(built: Path) -> None:
    (_data(built) / FAISS_FILE).unlink()
    with pytest.raises(IndexCorruptError, match="incomplete"):
        IndexStore.load(built)


@pytest.mark.parametrize(
    "content", ["{not json", "{}", '{"format": 99, "embed_model": "x", "dim": 1, "data": "d", "sha256": {}}']
)
def test_bad_manifest(built: Path, content: str) -> None:
    (built / MANIFEST).write_text(content)
    with pytest.raises(IndexCorruptError, match="rag index"):
        IndexStore.load(built)


def test_consistent_but_wrong_docstore(built: Path) -> None:
    """A docstore that passes its checksum but does not match the vectors is still caught."""
    data = _data(built)
    raw = json.loads((data / DOCSTORE_FILE).read_text())
    raw["chunks"] = {column: values[:-1] for column, values in raw["chunks"].items()}  # one chunk fewer
    _reseal_docstore(built, raw)
    with pytest.raises(IndexCorruptError, match="cannot be read"):
        IndexStore.load(built)


def test_interrupted_save_keeps_previous_index(
    built: Path, monkeypatch: pytest.MonkeyPatch, seeds_dir: Path, tmp_path: Path
) -> None:
    before = IndexStore.load(built)
    import faiss

    def boom(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(faiss, "write_index", boom)
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "new.txt").write_text("A brand new document about falcons.\n")
    with pytest.raises(KeyboardInterrupt):
        build_index([seeds_dir, extra], built, HashingEmbedder(), progress=False)
    after = IndexStore.load(built)
    assert [c.id for c in after.chunks] == [c.id for c in before.chunks]
    assert not [p for p in built.iterdir() if p.name.startswith(".tmp-")]


def test_interrupted_manifest_write_keeps_previous_index(
    built: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import index.store as store_mod

    real_replace = store_mod.os.replace

    def fail_on_manifest(src: object, dst: object) -> None:
        if str(dst).endswith(MANIFEST):
            raise KeyboardInterrupt
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(store_mod.os, "replace", fail_on_manifest)
    doc = tmp_path / "only.txt"
    doc.write_text("Only this document now.\n")
    with pytest.raises(KeyboardInterrupt):
        build_index([doc], built, HashingEmbedder(), progress=False)
    monkeypatch.undo()
    assert len(IndexStore.load(built).documents) == 5
    build_index([doc], built, HashingEmbedder(), progress=False)  # the next run cleans up and succeeds
    assert len(IndexStore.load(built).documents) == 1
    assert len([p for p in built.iterdir() if p.name.startswith("data-")]) == 1


def test_concurrent_writers_take_turns(tmp_path: Path, seeds_dir: Path) -> None:
    import threading

    out = tmp_path / "ix"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            build_index([seeds_dir], out, HashingEmbedder(), chunk_tokens=150, progress=False)
        except BaseException as err:  # noqa: BLE001 - surfaced by the assert below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(IndexStore.load(out).documents) == 5
    assert len([p for p in out.iterdir() if p.name.startswith("data-")]) == 1


def _reseal_docstore(index_dir: Path, raw: dict) -> None:
    import hashlib

    data = _data(index_dir)
    (data / DOCSTORE_FILE).write_text(json.dumps(raw))
    manifest = json.loads((index_dir / MANIFEST).read_text())
    manifest["sha256"][DOCSTORE_FILE] = hashlib.sha256((data / DOCSTORE_FILE).read_bytes()).hexdigest()
    (index_dir / MANIFEST).write_text(json.dumps(manifest))


def test_a_docstore_of_one_object_per_chunk_still_loads(built: Path) -> None:
    """Indexes written before the column docstore (format 1) open with the same chunks and keys."""
    new = IndexStore.load(built)
    raw = json.loads((_data(built) / DOCSTORE_FILE).read_text())
    assert raw["format"] == 2 and set(raw["chunks"]) == {"id", "doc", "start", "end", "embed_key"}
    docs = raw["documents"]
    cols = raw["chunks"]
    raw["format"] = 1
    raw["chunks"] = [
        {"id": i, "doc_id": docs[d]["id"], "source": docs[d]["source"], "start": s, "end": e, "embed_key": k}
        for i, d, s, e, k in zip(
            cols["id"], cols["doc"], cols["start"], cols["end"], cols["embed_key"], strict=True
        )
    ]
    _reseal_docstore(built, raw)
    old = IndexStore.load(built)
    assert list(old.chunks) == list(new.chunks) and old.embed_keys == new.embed_keys
    assert old.chunks == new.chunks  # a table compares equal to the same chunks
    np.testing.assert_array_equal(old.vectors, new.vectors)


def test_chunk_offsets_outside_their_document_fail_at_load_not_at_query(built: Path) -> None:
    """Chunks are made from the columns when read, so the columns are checked when the index is opened."""
    raw = json.loads((_data(built) / DOCSTORE_FILE).read_text())
    length = len(raw["documents"][raw["chunks"]["doc"][0]]["text"])
    raw["chunks"]["end"][0] = length + 1
    _reseal_docstore(built, raw)
    with pytest.raises(IndexCorruptError, match="outside its document"):
        IndexStore.load(built)


def test_a_loaded_table_reads_like_the_chunks_that_were_saved(tmp_path: Path, seeds_dir: Path) -> None:
    from index.store_faiss import FaissStore

    build_index([seeds_dir], tmp_path / "ix", HashingEmbedder(), progress=False)
    saved = list(IndexStore.load(tmp_path / "ix").chunks)
    reopened = FaissStore(tmp_path / "ix")
    table = reopened.chunks
    assert type(table).__name__ == "ChunkTable" and table == saved and table[-1] == saved[-1]
    assert table[1:3] == saved[1:3]
    source = saved[0].source
    assert reopened.chunks_of(source) == [c for c in saved if c.source == source]
    with pytest.raises(IndexError):
        table[len(saved)]
