"""Embedders: the registry, the fake's contract, errors naming the fix, and the real MiniLM (integration)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.embedder import EMBEDDERS, Embedder, load_embedder
from index.errors import ModelMissingError
from index.fake import HashingEmbedder


@pytest.mark.unit
def test_fake_is_registered_and_satisfies_the_protocol() -> None:
    emb = load_embedder("fake-hash")
    assert "fake-hash" in EMBEDDERS and isinstance(emb, HashingEmbedder) and isinstance(emb, Embedder)
    vecs = emb.embed(["Microsoft invested $650 million", "Microsoft invested $650 million", ""])
    assert vecs.dtype == np.float32 and vecs.shape == (3, emb.dim)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-6)
    assert np.array_equal(vecs[0], vecs[1])


@pytest.mark.unit
def test_fake_similarity_follows_shared_words() -> None:
    emb = HashingEmbedder()
    q, near, far = emb.embed(
        ["G42 investment", "Microsoft's G42 investment in Abu Dhabi", "wine tasting notes"]
    )
    assert q @ near > q @ far


@pytest.mark.unit
def test_missing_local_folder_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match="RAG_EMBED_MODEL"):
        load_embedder(str(tmp_path / "no" / "such" / "model"))


@pytest.mark.unit
def test_folder_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match="not a sentence-transformers model folder"):
        load_embedder(str(tmp_path))


@pytest.mark.unit
def test_default_is_lazy_and_named() -> None:
    emb = load_embedder("")
    assert emb.name == "all-MiniLM-L6-v2"
    assert load_embedder("all-MiniLM-L6-v2") is emb  # one shared model per process


@pytest.mark.integration
def test_minilm_matches_direct_encode() -> None:
    emb = load_embedder("")
    texts = ["Microsoft invested $650 million in Inflection.", "Who leads Microsoft AI?"]
    ours = emb.embed(texts)
    direct = emb.model.encode(texts, normalize_embeddings=True)  # type: ignore[attr-defined]
    assert ours.dtype == np.float32 and ours.shape == (2, 384) and emb.dim == 384
    np.testing.assert_allclose(ours, direct, atol=1e-5)
    assert emb.count_tokens(["Hello, world!"]) == [4]  # type: ignore[attr-defined]
