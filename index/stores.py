"""Stores by name: `open_store("faiss" | "postgres", ...)`, and the check that a store fits an embedder.

Example: open_store("faiss", index_dir=".rag").info().chunks -> 38
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from index.errors import ConfigError, IndexCorruptError
from index.store_api import Store


def _faiss(index_dir: str | Path, database_url: str, must_exist: bool, **options: Any) -> Store:
    from index.store_faiss import FaissStore

    return FaissStore(index_dir, must_exist=must_exist, **options)


def _postgres(index_dir: str | Path, database_url: str, must_exist: bool, **options: Any) -> Store:
    from index.pg_store import PgStore

    return PgStore.connect(database_url, must_exist=must_exist, **options)


STORES: dict[str, Callable[..., Store]] = {"faiss": _faiss, "postgres": _postgres}


def open_store(
    kind: str,
    *,
    index_dir: str | Path = ".rag",
    database_url: str = "",
    must_exist: bool = True,
    **options: Any,
) -> Store:
    """The store called `kind`. `must_exist=False` opens an empty one for a first `rag index`.

    Raises ConfigError for an unknown kind, IndexMissingError when nothing was indexed yet (must_exist),
    StoreError when a database cannot be reached.
    """
    name = (kind or "faiss").strip().lower()
    if name not in STORES:
        raise ConfigError(f"Unknown store {kind!r} (RAG_STORE); valid: {', '.join(STORES)}.")
    return STORES[name](index_dir, database_url, must_exist, **options)


def check_store(store: Store, embed_model: str, dim: int | None, where: str) -> None:
    """Raise IndexCorruptError naming the fix when `store` was built with another model or width."""
    info = store.info()
    if info is None:
        return
    if info.embed_model != embed_model:
        raise IndexCorruptError(
            f"The index at {where} was built with embedding model {info.embed_model!r}, now "
            f"{embed_model!r}: set RAG_EMBED_MODEL={info.embed_model} or rebuild it with `rag index`."
        )
    if dim is not None and info.dim != dim:
        raise IndexCorruptError(
            f"The index at {where} holds {info.dim}-d vectors, the model makes {dim}-d ones. "
            "Rebuild it with `rag index`."
        )
