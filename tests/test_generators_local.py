"""The `local` backend: model file assembly and checks (unit), real in-process generation (slow)."""

from __future__ import annotations

import pytest

from index.errors import ModelMissingError
from rag.config import Config
from rag.generators import GenerationRequest, build_generator
from rag.generators import model_files as mf


@pytest.mark.unit
def test_missing_model_file_names_the_fix(tmp_path):
    with pytest.raises(ModelMissingError, match="RAG_LLM_MODEL"):
        mf.resolve_model_path(str(tmp_path / "nope.gguf"), tmp_path)


@pytest.mark.unit
def test_non_gguf_file_is_rejected(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ModelMissingError, match="not a GGUF"):
        mf.resolve_model_path(str(bad), tmp_path)


@pytest.mark.unit
def test_wrong_checksum_is_refused_and_leaves_no_file(tmp_path, monkeypatch):
    parts = []
    for i in range(2):
        p = tmp_path / f"part{i}"
        p.write_bytes(b"GGUF" + bytes([i]) * 100)
        parts.append(p)
    monkeypatch.setattr(mf, "part_paths", lambda: parts)
    cache = tmp_path / "cache"
    with pytest.raises(ModelMissingError, match="wrong checksum.*force-reinstall"):
        mf.assemble_default_model(cache)
    assert list(cache.iterdir()) == []


@pytest.mark.unit
def test_good_parts_assemble_once(tmp_path, monkeypatch):
    part = tmp_path / "part"
    part.write_bytes(b"GGUF-tiny")
    monkeypatch.setattr(mf, "part_paths", lambda: [part])
    monkeypatch.setattr(mf, "DEFAULT_MODEL_SHA256", mf.sha256_of(part))
    first = mf.assemble_default_model(tmp_path / "c")
    assert first.read_bytes() == b"GGUF-tiny"
    monkeypatch.setattr(mf, "part_paths", lambda: pytest.fail("re-assembled"))
    assert mf.assemble_default_model(tmp_path / "c") == first


@pytest.mark.integration
@pytest.mark.slow
def test_default_model_assembles_verifies_and_streams():
    path = mf.assemble_default_model(Config.from_env({}).cache_dir)
    assert mf.sha256_of(path) == mf.DEFAULT_MODEL_SHA256
    gen = build_generator("local", Config.from_env({}))
    pieces = list(gen.stream(GenerationRequest(
        messages=({"role": "user", "content": "What is 2 + 2? Reply with the number only."},),
        question="", passages=(), max_tokens=8,
    )))
    assert len(pieces) >= 1 and "4" in "".join(pieces)
    assert gen.ready
