"""Shared fixtures. Unit tests may not touch the network; the real index over seeds/ is built once per run."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _no_network_in_unit_tests(request, monkeypatch):
    """A unit test that opens a non-loopback connection fails (Haystack's habit)."""
    if request.node.get_closest_marker("unit") is None:
        return
    real_connect = socket.socket.connect

    def guarded(self, address):  # type: ignore[no-untyped-def]
        host = address[0] if isinstance(address, tuple) else address
        local = ("127.0.0.1", "localhost", "::1")
        if isinstance(host, str) and host not in local and not host.startswith("/"):
            raise RuntimeError(f"unit test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    return ROOT / "seeds"


@pytest.fixture(scope="session")
def real_index_dir(tmp_path_factory, seeds_dir) -> Path:
    """An index over seeds/ built once per session with the real MiniLM model and real FAISS."""
    from index.builder import build_index
    from index.embedder import load_embedder

    out = tmp_path_factory.mktemp("index")
    build_index([seeds_dir], out, load_embedder(""), progress=False)
    return out


@pytest.fixture(scope="session")
def real_config(real_index_dir, seeds_dir, tmp_path_factory):
    from rag.config import Config

    return Config.from_env(
        {},
        index_dir=str(real_index_dir),
        corpus=str(seeds_dir),
        feedback_path=str(tmp_path_factory.mktemp("fb") / "feedback.jsonl"),
    )


# --- store (issue 10): one real PostgreSQL + pgvector per session, a fresh database per test
@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory) -> str:  # type: ignore[no-untyped-def]
    from tests.pg_server import start

    url, server = start(tmp_path_factory.mktemp("pg"))
    yield url
    if server is not None:
        server.cleanup()


@pytest.fixture
def pg_url(pg_admin_url, request) -> str:
    """The URL of an empty database for this test."""
    import re

    from tests.pg_server import new_database

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[-50:]
    return new_database(pg_admin_url, name)
