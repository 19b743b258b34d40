"""The hybrid retriever as a langchain `BaseRetriever`: the only module that imports langchain.

`RagRetriever(k=3).invoke("question")` or `.invoke("question", k=1)`, sync or async, returns langchain
`Document`s whose `page_content` is the passage and whose metadata holds source, title, chunk_id, start,
end, rank, score and the dense/BM25 scores. Build it around an open `HybridRetriever`
(`RagRetriever(retriever=r)`), or let it open the index itself from `index_dir`/`embed_model`
(defaults: the `RAG_*` environment), over either store (`store="postgres"`, `database_url=...`).
Leaves out langchain's vector-store interface (adding documents).
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from index.records import Hit
from rag.config import Config
from rag.retriever import HybridRetriever, open_retriever


class RagRetriever(BaseRetriever):
    """langchain adapter over `HybridRetriever`; `k` is the default number of passages."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    k: int = 4
    index_dir: str | None = None
    embed_model: str | None = None
    store: str | None = None  # "faiss" | "postgres" (default: RAG_STORE)
    database_url: str | None = Field(default=None, repr=False)  # may hold a password
    retriever: HybridRetriever | None = Field(default=None, exclude=True, repr=False)

    def model_post_init(self, context: Any, /) -> None:
        if self.retriever is None:
            config = Config.from_env(
                index_dir=self.index_dir,
                embed_model=self.embed_model,
                store=self.store,
                database_url=self.database_url,
            )
            self.retriever = open_retriever(config)

    @classmethod
    def from_config(cls, config: Config, k: int | None = None) -> RagRetriever:
        """Open the index that `config` names."""
        return cls(
            retriever=open_retriever(config), k=k or config.k, index_dir=config.index_dir, store=config.store
        )

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[LCDocument]:
        return self._search(query, k)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[LCDocument]:
        return await asyncio.to_thread(self._search, query, k)

    def _search(self, query: str, k: int | None) -> list[LCDocument]:
        assert self.retriever is not None  # set in model_post_init
        return [to_lc_document(h) for h in self.retriever.search(query, self.k if k is None else k)]


def to_lc_document(hit: Hit) -> LCDocument:
    """A hit as a langchain Document; the id is the chunk id."""
    c = hit.chunk
    metadata = {
        "source": c.source,
        "title": c.title,
        "chunk_id": c.id,
        "doc_id": c.doc_id,
        "start": c.start,
        "end": c.end,
        "rank": hit.rank,
        "score": hit.score,
        "scores": dict(hit.scores),
    }
    return LCDocument(page_content=c.text, metadata=metadata, id=c.id)
