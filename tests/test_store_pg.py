"""PostgreSQL store beyond the shared contract: errors that name the fix, schema versions, a crash mid-write,
the CLI and langchain over it, feedback from replicas. Real PostgreSQL + pgvector (tests/pg_server.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from index.builder import build_index
from index.errors import ConfigError, IndexMissingError, StoreError
from index.fake import HashingEmbedder
from index.pg_schema import SCHEMA_VERSION
from index.pg_store import PgStore, redact
from rag.cli import main

pytestmark = pytest.mark.integration


def _as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.hostname or ''}"))


def test_unreachable_server_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(
        StoreError, match=r"Cannot reach PostgreSQL at .*Start the server or fix RAG_DATABASE_URL"
    ):
        PgStore.connect(f"postgresql://rag@/rag?host={tmp_path}", connect_timeout=2)


def test_missing_url_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="RAG_DATABASE_URL"):
        PgStore.connect("")


def test_missing_vector_extension_names_the_fix(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS plain")
        conn.execute("CREATE ROLE plain LOGIN")  # not a superuser: may not create pgvector's extension
    with pytest.raises(StoreError, match=r"no `vector` extension.*CREATE EXTENSION vector"):
        PgStore.connect(_as_user(pg_url, "plain"))


def test_empty_database_is_missing_an_index(pg_url: str) -> None:
    with pytest.raises(IndexMissingError, match=r"No index in the database .*Run `rag index` first"):
        PgStore.connect(pg_url)


def test_schema_is_versioned_and_migration_is_idempotent(pg_url: str) -> None:
    PgStore.connect(pg_url, must_exist=False).close()
    PgStore.connect(pg_url, must_exist=False).close()
    with psycopg.connect(pg_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM rag_schema ORDER BY version")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        conn.execute("INSERT INTO rag_schema (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="Upgrade rag-chat"):
        PgStore.connect(pg_url, must_exist=False)


def test_redact_hides_the_password() -> None:
    assert redact("postgresql://u:secret@db:5432/rag") == "postgresql://u@db:5432/rag"


def test_crash_mid_copy_keeps_the_previous_index(
    pg_url: str, seeds_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PgStore.connect(pg_url, must_exist=False)
    build_index([seeds_dir], "", HashingEmbedder(), store=store, progress=False)
    before = store.info()
    import index.pg_store as pg

    real = pg._copy_chunks

    def half_then_die(conn, changes):  # type: ignore[no-untyped-def]
        real(conn, changes)  # the rows are written inside the transaction ...
        raise KeyboardInterrupt  # ... and the run dies before it commits

    monkeypatch.setattr(pg, "_copy_chunks", half_then_die)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "zebra.txt").write_text("Zebras have stripes.\n")
    with pytest.raises(KeyboardInterrupt):
        build_index([extra], "", HashingEmbedder(), store=store, progress=False)
    other = PgStore.connect(pg_url)  # another replica
    assert other.info() == before and other.search_keyword("zebras", 3) == []
    assert len(other.stored_documents()) == 5
    other.close()
    store.close()


def test_cli_index_and_search_over_postgres(
    pg_url: str, seeds_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in [v for v in os.environ if v.startswith("RAG_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("RAG_EMBED_MODEL", "fake-hash")
    monkeypatch.setenv("RAG_STORE", "postgres")
    monkeypatch.setenv("RAG_DATABASE_URL", pg_url)
    assert main(["index", str(seeds_dir)]) == 0
    out = capsys.readouterr().out
    assert "Indexed 5 documents" in out and "postgresql://" in out
    assert main(["index", str(seeds_dir)]) == 0
    assert "added 0," in capsys.readouterr().out
    assert main(["search", "How much did Microsoft put into Inflection?", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. [") and "000_cd01c28a230eedd7.txt" in out
    monkeypatch.setenv("RAG_EMBED_MODEL", "")  # the packaged MiniLM: not what the database was built with
    assert main(["search", "anything"]) != 0
    assert "RAG_EMBED_MODEL=fake-hash" in capsys.readouterr().err


def test_langchain_retriever_over_postgres(pg_url: str, seeds_dir: Path) -> None:
    from rag.config import Config
    from rag.lc_retriever import RagRetriever

    store = PgStore.connect(pg_url, must_exist=False)
    build_index([seeds_dir], "", HashingEmbedder(), store=store, progress=False)
    store.close()
    config = Config.from_env({}, store="postgres", database_url=pg_url, embed_model="fake-hash")
    lc = RagRetriever.from_config(config, k=2)
    docs = lc.invoke("How much did Microsoft put into Inflection?")
    lc.retriever.store.close()  # type: ignore[union-attr]
    assert len(docs) == 2 and docs[0].metadata["source"] == "000_cd01c28a230eedd7.txt"
    assert docs[0].metadata["scores"]["bm25"] > 0


def test_feedback_goes_to_the_database(pg_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ui.feedback import read_feedback, record_feedback

    monkeypatch.setenv("RAG_STORE", "postgres")
    monkeypatch.setenv("RAG_DATABASE_URL", pg_url)
    path = tmp_path / "fb.jsonl"
    record_feedback(path, vote="up", question="q1", answer="a1", backend="extractive")
    record_feedback(path, vote="down", question="q2", answer="a2", comment="wrong year")
    assert not path.exists()  # nothing local: every replica writes to the one database
    rows = read_feedback(path)
    assert [(r["vote"], r["question"]) for r in rows] == [("up", "q1"), ("down", "q2")]
    assert rows[1]["comment"] == "wrong year"
    monkeypatch.delenv("RAG_STORE")
    assert read_feedback(pg_url) == rows  # a URL as the path reads the database too


def test_documents_and_chunks_views(pg_url: str, seeds_dir: Path) -> None:
    """`store.documents` / `store.chunks` behave like the FAISS dict and list (the pipeline counts them)."""
    store = PgStore.connect(pg_url, must_exist=False)
    report = build_index([seeds_dir], "", HashingEmbedder(), store=store, progress=False)
    assert len(store.documents) == 5 and len(store.chunks) == report.chunks
    assert "000_cd01c28a230eedd7.txt" in store.documents and "nope" not in store.documents
    assert store.documents["000_cd01c28a230eedd7.txt"].title
    chunks = list(store.chunks)  # pages through the table
    assert len(chunks) == report.chunks and len({c.id for c in chunks}) == report.chunks
    store.close()


def test_rate_limits_are_shared_by_replicas_through_the_database(pg_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from ui.limits import RateLimit

    one, two = PgStore.connect(pg_url, must_exist=False), PgStore.connect(pg_url, must_exist=False)
    try:
        with ThreadPoolExecutor(8) as pool:  # concurrent hits from two pools: none lost
            list(pool.map(lambda i: (one if i % 2 else two).count_hit("burst", 60), range(40)))
        assert one.count_get("burst")[0] == 40 == two.count_get("burst")[0]
        a, b = RateLimit("3/minute", one), RateLimit("3/minute", two)  # two server processes
        assert [a.hit("10.0.0.1"), b.hit("10.0.0.1"), a.hit("10.0.0.1")] == [0, 0, 0]
        assert 0 < b.hit("10.0.0.1") <= 60 and a.hit("10.0.0.2") == 0
        count, end = one.count_hit("short", 0.2)
        time.sleep(0.5)  # the window ended: a new one starts at 1, the old count does not linger
        assert count == 1 and one.count_get("short")[0] == 0 and one.count_hit("short", 0.2)[0] == 1
        assert one.count_clear() >= 3 and two.count_get("burst")[0] == 0
    finally:
        one.close()
        two.close()


def test_search_settings_come_from_the_config(pg_url: str) -> None:
    from rag.config import Config
    from rag.retriever import open_config_store

    env = {"RAG_STORE": "postgres", "RAG_DATABASE_URL": pg_url, "RAG_PG_EF_SEARCH": "40",
           "RAG_PG_KEYWORD_RANK": "ts_rank", "RAG_PG_KEYWORD_BUDGET": "700"}
    store = open_config_store(Config.from_env(env), must_exist=False)
    try:
        assert (store.ef_search, store.rank, store.keyword_budget) == (40, "ts_rank", 700)
    finally:
        store.close()
    with pytest.raises(ConfigError, match="RAG_PG_KEYWORD_RANK"):
        open_config_store(Config.from_env({**env, "RAG_PG_KEYWORD_RANK": "bm42"}), must_exist=False)
