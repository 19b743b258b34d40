"""Corrupt state never becomes a traceback: fuzzed manifest, docstore and vector files (types, truncation,
swapped files, random bytes) and fuzzed API bodies. Every case must end in one of our errors."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.builder import build_index
from index.errors import RagError
from index.fake import HashingEmbedder
from index.store import DOCSTORE_FILE, FAISS_FILE, MANIFEST, IndexStore, read_manifest

pytestmark = pytest.mark.unit
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, seeds_dir) -> Path:
    out = tmp_path_factory.mktemp("pristine")
    build_index([seeds_dir], out, HashingEmbedder(), progress=False)
    return out


def _copy(pristine: Path, tmp: Path) -> Path:
    dst = tmp / "ix"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(pristine, dst)
    return dst


def _data(ix: Path) -> Path:
    return ix / str(read_manifest(ix)["data"])


def _reseal(ix: Path) -> None:
    """Rewrite the checksums so the damage reaches the parsers, not just the checksum check."""
    manifest = json.loads((ix / MANIFEST).read_text())
    data = ix / manifest["data"]
    manifest["sha256"] = {
        n: hashlib.sha256((data / n).read_bytes()).hexdigest() for n in (FAISS_FILE, DOCSTORE_FILE)
    }
    manifest["bm25_sha256"] = {
        n: hashlib.sha256((data / n).read_bytes()).hexdigest() for n in manifest["bm25_sha256"]
    }
    (ix / MANIFEST).write_text(json.dumps(manifest))


def _loads_or_fails_cleanly(ix: Path) -> None:
    try:
        IndexStore.load(ix, embedder_name="fake-hash")
    except RagError as err:
        assert "\n" not in str(err) and "rag index" in str(err).lower() or "Run `rag index`" in str(err)


@FUZZ
@given(
    field=st.sampled_from(["format", "embed_model", "dim", "data", "sha256", "bm25_sha256", "chunk_tokens"]),
    value=JSON_VALUES,
)
def test_manifest_field_of_any_type(pristine, tmp_path, field, value):
    ix = _copy(pristine, tmp_path)
    manifest = json.loads((ix / MANIFEST).read_text())
    manifest[field] = value
    (ix / MANIFEST).write_text(json.dumps(manifest))
    _loads_or_fails_cleanly(ix)


@FUZZ
@given(
    which=st.sampled_from([MANIFEST, FAISS_FILE, DOCSTORE_FILE]), cut=st.floats(0, 1), reseal=st.booleans()
)
def test_truncated_files(pristine, tmp_path, which, cut, reseal):
    ix = _copy(pristine, tmp_path)
    path = ix / which if which == MANIFEST else _data(ix) / which
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * cut)])
    if reseal and which != MANIFEST:
        _reseal(ix)
    _loads_or_fails_cleanly(ix)


@FUZZ
@given(
    which=st.sampled_from([MANIFEST, FAISS_FILE, DOCSTORE_FILE]),
    junk=st.binary(max_size=200),
    reseal=st.booleans(),
)
def test_random_bytes(pristine, tmp_path, which, junk, reseal):
    ix = _copy(pristine, tmp_path)
    path = ix / which if which == MANIFEST else _data(ix) / which
    path.write_bytes(junk)
    if reseal and which != MANIFEST:
        _reseal(ix)
    _loads_or_fails_cleanly(ix)


@FUZZ
@given(
    path=st.lists(
        st.sampled_from(["documents", "chunks", 0, "start", "end", "source", "id", "text"]),
        min_size=1,
        max_size=3,
    ),
    value=JSON_VALUES,
)
def test_docstore_values_of_any_type(pristine, tmp_path, path, value):
    ix = _copy(pristine, tmp_path)
    store = _data(ix) / DOCSTORE_FILE
    doc = json.loads(store.read_text())
    node = doc
    for key in path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
    try:
        node[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass
    store.write_text(json.dumps(doc))
    _reseal(ix)
    _loads_or_fails_cleanly(ix)


BM25_NAMES = ["bm25-data.npy", "bm25-indices.npy", "bm25-indptr.npy", "bm25-vocab.json", "bm25-params.json"]


def _searches_or_fails_cleanly(ix: Path) -> None:
    """The keyword index is read when the index is opened: damage ends there, in one of our errors; an
    index that opens must then answer keyword searches without a traceback."""
    from index.store_faiss import FaissStore

    try:
        store = FaissStore(ix, embedder_name="fake-hash")
    except RagError as err:
        assert "\n" not in str(err) and "rag index" in str(err).lower()
        return
    for query in ("Microsoft OpenAI investment", "Nadella", "zzzz unknown"):
        store.search_keyword(query, 5)


@FUZZ
@given(
    which=st.sampled_from(BM25_NAMES), cut=st.floats(0, 1), junk=st.binary(max_size=64), reseal=st.booleans()
)
def test_damaged_keyword_files(pristine, tmp_path, which, cut, junk, reseal):
    ix = _copy(pristine, tmp_path)
    path = _data(ix) / which
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * cut)] + junk)
    if reseal:
        _reseal(ix)
    _searches_or_fails_cleanly(ix)


@FUZZ
@given(
    which=st.sampled_from(["bm25-data.npy", "bm25-indices.npy", "bm25-indptr.npy"]),
    values=st.lists(st.integers(-(2**31), 2**31 - 1), max_size=40),
    as_float=st.booleans(),
)
def test_keyword_arrays_of_the_wrong_shape_or_range(pristine, tmp_path, which, values, as_float):
    """Well-formed .npy files holding arrays that do not fit the rest of the keyword index."""
    import numpy as np

    ix = _copy(pristine, tmp_path)
    path = _data(ix) / which
    original = np.load(path)
    if values:
        kind = np.float32 if as_float else original.dtype
        array = np.resize(np.asarray(values, dtype=kind), original.shape)
    else:
        array = np.zeros(0, original.dtype)
    np.save(path, array)
    _reseal(ix)
    _searches_or_fails_cleanly(ix)


def test_keyword_vocabulary_with_ids_outside_it(pristine, tmp_path):
    ix = _copy(pristine, tmp_path)
    path = _data(ix) / "bm25-vocab.json"
    vocab = json.loads(path.read_text())
    vocab[next(iter(vocab))] = len(vocab) + 5
    path.write_text(json.dumps(vocab))
    _reseal(ix)
    with pytest.raises(RagError, match="keyword index"):
        IndexStore.load(ix, embedder_name="fake-hash")


def test_swapped_files(pristine, tmp_path):
    ix = _copy(pristine, tmp_path)
    data = _data(ix)
    a, b = (data / FAISS_FILE).read_bytes(), (data / DOCSTORE_FILE).read_bytes()
    (data / FAISS_FILE).write_bytes(b)
    (data / DOCSTORE_FILE).write_bytes(a)
    for reseal in (False, True):
        if reseal:
            _reseal(ix)
        with pytest.raises(RagError):
            IndexStore.load(ix, embedder_name="fake-hash")


def test_rag_index_repairs_a_manifest_field_of_the_wrong_type(pristine, tmp_path, seeds_dir):
    ix = _copy(pristine, tmp_path)
    manifest = json.loads((ix / MANIFEST).read_text())
    manifest["sha256"] = ["not", "a", "dict"]
    (ix / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RagError):
        IndexStore.load(ix, embedder_name="fake-hash")
    build_index([seeds_dir], ix, HashingEmbedder(), progress=False)
    assert len(IndexStore.load(ix, embedder_name="fake-hash").documents) == 5


def test_changed_vector_width_under_the_same_name_rebuilds(pristine, tmp_path, seeds_dir):
    ix = _copy(pristine, tmp_path)
    wider = HashingEmbedder(dim=384)  # same name "fake-hash", other width
    report = build_index([seeds_dir], ix, wider, progress=False)
    assert report.added == report.chunks > 0  # re-embedded, not reused
    assert IndexStore.load(ix, embedder_name="fake-hash", dim=384).dim == 384


# --- API bodies


@FUZZ
@given(body=JSON_VALUES, raw=st.binary(max_size=64))
def test_fuzzed_api_bodies_never_500(tmp_path, body, raw):
    from fakes_ui import FakePipeline
    from fastapi.testclient import TestClient

    from rag.config import Config
    from ui.server import build_server

    global _client
    if "_client" not in globals():
        cfg = Config.from_env(
            {}, max_question_chars=200, rate_limit="", feedback_path=str(tmp_path / "f.jsonl")
        )
        _client = TestClient(build_server(FakePipeline(config=cfg), env={}))
    for path in ("/api/ask", "/api/ask/stream", "/api/search", "/api/feedback"):
        for content in (
            json.dumps(body).encode(),
            raw,
            json.dumps({"question": body, "history": body}).encode(),
        ):
            r = _client.post(path, content=content, headers={"content-type": "application/json"})
            assert r.status_code < 500, (path, content, r.text)
            if r.status_code >= 400:
                assert set(r.json()) == {"error", "detail"}
