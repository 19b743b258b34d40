"""A running retriever sees a re-index by another process without a restart (FAISS default)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from index.builder import build_index
from index.fake import HashingEmbedder
from rag.config import Config
from rag.retriever import open_retriever

pytestmark = pytest.mark.unit


def test_retriever_reloads_a_changed_index(tmp_path: Path, seeds_dir: Path) -> None:
    corpus, ix = tmp_path / "corpus", tmp_path / "ix"
    shutil.copytree(seeds_dir, corpus)
    build_index([corpus], ix, HashingEmbedder(), progress=False)
    retriever = open_retriever(Config.from_env({}, index_dir=str(ix)), HashingEmbedder())
    retriever.store.check_every = 0.0  # type: ignore[attr-defined]  # the server checks once a second
    assert all(h.chunk.source != "falcons.md" for h in retriever.search("falcons hunting", 3))
    (corpus / "falcons.md").write_text("# Falcons\n\nFalcons are hunting birds.\n")
    build_index([corpus], ix, HashingEmbedder(), progress=False)  # as `rag index` in another process
    assert retriever.search("falcons hunting", 3)[0].chunk.source == "falcons.md"
    assert retriever.store.document("falcons.md") is not None


def test_a_damaged_new_version_keeps_serving_the_old_one(tmp_path: Path, seeds_dir: Path) -> None:
    ix = tmp_path / "ix"
    build_index([seeds_dir], ix, HashingEmbedder(), progress=False)
    retriever = open_retriever(Config.from_env({}, index_dir=str(ix)), HashingEmbedder())
    retriever.store.check_every = 0.0  # type: ignore[attr-defined]
    (ix / "manifest.json").write_text("{broken")
    hits = retriever.search("How much did Microsoft put into Inflection?", 2)
    assert hits and hits[0].chunk.source == "000_cd01c28a230eedd7.txt"
