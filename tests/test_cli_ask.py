"""`rag ask` through the real CLI entry point, over the real seeds index."""

from __future__ import annotations

import json

import pytest

from rag.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def env(real_config, monkeypatch):
    monkeypatch.setenv("RAG_INDEX_DIR", real_config.index_dir)
    monkeypatch.setenv("RAG_BACKEND", "extractive")


def test_ask_json_has_the_shared_shape(env, capsys):
    assert main(["ask", "How much did Microsoft put into Inflection?", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"question", "answer", "refused", "citations", "retrieved", "backend", "timings_ms"} <= set(out)
    assert out["refused"] is False and "650" in out["answer"] and out["backend"] == "extractive"
    assert {"n", "source", "chunk_id", "start", "end", "quote"} <= set(out["citations"][0])
    assert {"retrieve", "first_token", "total"} <= set(out["timings_ms"])
    assert out["retrieved"][0]["rank"] == 1 and "text" in out["retrieved"][0]


def test_ask_text_prints_answer_and_numbered_sources(env, capsys):
    assert main(["ask", "Who is the CEO of Microsoft AI?", "--no-stream"]) == 0
    out = capsys.readouterr().out
    assert "Suleyman" in out and "Sources:" in out and "[1] 004_" in out


def test_ask_declines_and_lists_closest_passages(env, capsys):
    assert main(["ask", "Who won the 2022 FIFA World Cup?"]) == 0
    out = capsys.readouterr().out
    assert "documents don't say" in out and "Closest passages:" in out


def test_ask_with_history_file(env, capsys, tmp_path):
    history = tmp_path / "h.json"
    turns = [{"role": "user", "content": "How much did Microsoft put into Inflection?"}]
    history.write_text(json.dumps(turns))
    assert main(["ask", "And how much in G42?", "--history", str(history), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["standalone_question"] == "How much did Microsoft put into G42?"
    assert "1.5 billion" in out["answer"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", "   "], "Ask a question"),
        (["ask", "q", "--backend", "nope"], "Valid backends: local, openai, extractive"),
        (["ask", "q", "--history", "/nonexistent.json"], "Cannot read history"),
    ],
)
def test_errors_are_one_line_without_traceback(env, capsys, argv, message):
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unreachable_server_is_one_clear_line(env, capsys, monkeypatch):
    monkeypatch.setenv("RAG_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    assert main(["ask", "How much did Microsoft put into Inflection?", "--backend", "openai"]) == 1
    err = capsys.readouterr().err
    assert "Cannot reach the OpenAI-compatible server" in err and "Traceback" not in err


def test_missing_index_names_the_fix(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "none"))
    assert main(["ask", "q"]) == 1
    assert "rag index" in capsys.readouterr().err
