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
    monkeypatch.setattr(mf, "part_paths", lambda model: parts)
    cache = tmp_path / "cache"
    with pytest.raises(ModelMissingError, match="wrong checksum.*force-reinstall"):
        mf.assemble(mf.PACKAGED[mf.DEFAULT_MODEL], cache)
    assert list(cache.iterdir()) == []


@pytest.mark.unit
def test_good_parts_assemble_once(tmp_path, monkeypatch):
    part = tmp_path / "part"
    part.write_bytes(b"GGUF-tiny")
    monkeypatch.setattr(mf, "part_paths", lambda model: [part])
    model = mf.PackagedModel("tiny", "tiny.gguf", mf.sha256_of(part), ("m",), ("m==1",))
    first = mf.assemble(model, tmp_path / "c")
    assert first.read_bytes() == b"GGUF-tiny"
    monkeypatch.setattr(mf, "part_paths", lambda model: pytest.fail("re-assembled"))
    assert mf.assemble(model, tmp_path / "c") == first


@pytest.mark.unit
def test_packaged_model_names_resolve_and_unknown_names_list_them(tmp_path):
    with pytest.raises(ModelMissingError, match="qwen2.5-coder-1.5b, qwen2.5-coder-0.5b"):
        mf.resolve_model_path("qwen-9000", tmp_path)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("name", list(mf.PACKAGED))
def test_packaged_models_assemble_and_verify(name):
    path = mf.resolve_model_path(name, Config.from_env({}).cache_dir)
    assert mf.sha256_of(path) == mf.PACKAGED[name].sha256


@pytest.mark.integration
@pytest.mark.slow
def test_default_model_streams():
    gen = build_generator("local", Config.from_env({}))
    pieces = list(gen.stream(GenerationRequest(
        messages=({"role": "user", "content": "What is 2 + 2? Reply with the number only."},),
        question="", passages=(), max_tokens=8,
    )))
    assert len(pieces) >= 1 and "4" in "".join(pieces)
    assert gen.ready


@pytest.mark.integration
@pytest.mark.slow
def test_default_model_logs_its_token_probabilities():
    """The real model reports each token's log-probability; a question its source cannot answer puts more
    weight on the decline marker at the first token than one it can."""
    from rag.confidence import TokenLog, confidence

    gen = build_generator("local", Config.from_env({}))

    def ask(question: str) -> tuple[str, object]:
        log = TokenLog()
        prompt = ("Source [1]: The reading room opens at 08:30 and closes at 18:00.\n"
                  f"Question: {question}\nAnswer in one sentence ending with [1], or reply exactly "
                  "UNANSWERABLE if the source does not say.")
        text = "".join(gen.stream(GenerationRequest(
            messages=({"role": "user", "content": prompt},), question="", passages=(), max_tokens=24,
            token_log=log)))
        return text, confidence(log.tokens, "UNANSWERABLE")

    text, sure = ask("When does the reading room close?")
    assert "18:00" in text and sure is not None and sure.tokens > 0 and sure.answer_logprob <= 0.0
    _, doubt = ask("How much does a reading room locker cost?")
    assert doubt is not None and doubt.decline > sure.decline
