"""The langchain adapter: langchain's own standard retriever suite, plus metadata and per-call k."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document as LCDocument
from langchain_tests.integration_tests import RetrieversIntegrationTests

from index.builder import build_index
from index.fake import HashingEmbedder
from rag.config import Config
from rag.lc_retriever import RagRetriever


@pytest.mark.integration
class TestRagRetrieverStandard(RetrieversIntegrationTests):
    """langchain-tests' `RetrieversIntegrationTests` against the real index over seeds/."""

    index_dir: str = ""

    @pytest.fixture(autouse=True)
    def _real_index(self, real_index_dir: Path) -> None:
        type(self).index_dir = str(real_index_dir)

    @property
    def retriever_constructor(self) -> type[RagRetriever]:
        return RagRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"index_dir": self.index_dir, "embed_model": ""}

    @property
    def retriever_query_example(self) -> str:
        return "How much did Microsoft put into Inflection?"


@pytest.fixture(scope="module")
def fake_config(tmp_path_factory: pytest.TempPathFactory, seeds_dir: Path) -> Config:
    out = tmp_path_factory.mktemp("lc-ix")
    build_index([seeds_dir], out, HashingEmbedder(), progress=False)
    return Config.from_env({}, index_dir=str(out), embed_model="fake-hash")


@pytest.mark.unit
def test_k_at_construction_and_per_call(fake_config: Config) -> None:
    r = RagRetriever.from_config(fake_config, k=3)
    assert len(r.invoke("Inflection investment")) == 3
    assert len(r.invoke("Inflection investment", k=1)) == 1
    assert r.k == 3


@pytest.mark.unit
async def test_async_with_k(fake_config: Config) -> None:
    r = RagRetriever(index_dir=fake_config.index_dir, embed_model="fake-hash", k=2)
    docs = await r.ainvoke("G42 Abu Dhabi", k=4)
    assert len(docs) == 4 and all(isinstance(d, LCDocument) for d in docs)


@pytest.mark.unit
def test_metadata(fake_config: Config) -> None:
    r = RagRetriever.from_config(fake_config)
    doc = r.invoke("$650 million Inflection", k=1)[0]
    meta = doc.metadata
    assert {"source", "title", "chunk_id", "start", "end", "score", "rank", "scores"} <= set(meta)
    assert doc.id == meta["chunk_id"] and meta["rank"] == 1
    store = r.retriever.store  # type: ignore[union-attr]
    assert store.documents[meta["source"]].text[meta["start"] : meta["end"]] == doc.page_content
