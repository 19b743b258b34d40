"""The PostgreSQL schema of the `postgres` store, created and migrated by the project.

`migrate(conn)` brings a database to `SCHEMA_VERSION`, one numbered step at a time, each in its own
transaction, under an advisory lock (two replicas starting at once do not race). `rag_schema` records the
steps applied; step 3 adds `rag_lexemes` (document frequency per lexeme, for IDF-weighted keyword ranking).
The vector column gets its width at the first `rag index` (pgvector's HNSW index needs a fixed width, and
the width depends on the embedding model), see `PgStore.apply`.
Leaves out down-migrations.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 3
MIGRATION_LOCK = 0x5241_4701  # pg_advisory lock key for migrations ("RAG" + 1)
WRITE_LOCK = 0x5241_4702  # one `rag index` at a time per database

# Step n brings the schema from version n-1 to n. Append; never edit a released step.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE rag_manifest (
            one boolean PRIMARY KEY DEFAULT true CHECK (one),
            embed_model text NOT NULL,
            dim integer NOT NULL,
            settings jsonb NOT NULL,
            documents integer NOT NULL DEFAULT 0,
            chunks integer NOT NULL DEFAULT 0,
            generation bigint NOT NULL DEFAULT 0,
            updated timestamptz NOT NULL DEFAULT now())""",
        """CREATE TABLE rag_documents (
            source text PRIMARY KEY,
            id text NOT NULL,
            title text NOT NULL,
            text text NOT NULL,
            path text NOT NULL,
            mtime double precision NOT NULL)""",
        # `text` duplicates documents.text[start:end]: searches return passages without a join
        """CREATE TABLE rag_chunks (
            seq bigserial,
            id text PRIMARY KEY,
            source text NOT NULL REFERENCES rag_documents (source) ON DELETE CASCADE,
            doc_id text NOT NULL,
            title text NOT NULL,
            text text NOT NULL,
            start_at integer NOT NULL,
            end_at integer NOT NULL,
            embed_key text NOT NULL,
            embedding vector NOT NULL,
            tsv tsvector GENERATED ALWAYS AS
                (to_tsvector('english'::regconfig, title || E'\\n' || text)) STORED)""",
        "CREATE INDEX rag_chunks_source ON rag_chunks (source, start_at)",
        "CREATE INDEX rag_chunks_embed_key ON rag_chunks (embed_key)",
        "CREATE INDEX rag_chunks_tsv ON rag_chunks USING gin (tsv)",
        """CREATE TABLE rag_feedback (
            id bigserial PRIMARY KEY,
            ts timestamptz NOT NULL DEFAULT now(),
            record jsonb NOT NULL)""",
    ],
    2: [
        # per-client rate limits shared by every replica (ui/limits.py): one row per client and limit
        """CREATE TABLE rag_counters (
            key text PRIMARY KEY,
            count bigint NOT NULL,
            expires_at timestamptz NOT NULL)""",
    ],
    # document frequency per lexeme of `rag_chunks.tsv`, kept by `PgStore.apply` in the same transaction:
    # gives BM25's IDF and tells a query which of its terms are rare enough to generate candidates
    3: [
        "CREATE TABLE rag_lexemes (lexeme text PRIMARY KEY, df integer NOT NULL)",
        "INSERT INTO rag_lexemes SELECT word, ndoc FROM ts_stat('SELECT tsv FROM rag_chunks')",
    ],
}


def schema_version(conn: Any) -> int:
    """The version a database is at (0 = never migrated)."""
    exists = conn.execute("SELECT to_regclass('rag_schema') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    row = conn.execute("SELECT max(version) FROM rag_schema").fetchone()
    return int(row[0] or 0)


def migrate(conn: Any) -> int:
    """Apply the missing steps; returns the version reached. `conn` must be in autocommit mode."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS rag_schema "
            "(version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())"
        )
        current = schema_version(conn)
        if current > SCHEMA_VERSION:
            return current  # a newer rag wrote it; `PgStore` refuses to write to it
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO rag_schema (version) VALUES (%s)", (version,))
    return max(current, SCHEMA_VERSION)
