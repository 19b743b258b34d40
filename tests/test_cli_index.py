"""`rag index` and `rag search` through `rag.cli.main`, and once as a real process: output and error lines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in [v for v in os.environ if v.startswith("RAG_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("RAG_EMBED_MODEL", "fake-hash")
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "ix"))
    return tmp_path / "ix"


@pytest.mark.unit
def test_index_then_search(env: Path, seeds_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(seeds_dir)]) == 0
    out = capsys.readouterr().out
    assert "Indexed 5 documents" in out and "added" in out and "0 failures" in out
    assert main(["index", str(seeds_dir)]) == 0
    assert "added 0," in capsys.readouterr().out
    assert main(["search", "How much did Microsoft put into Inflection?", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. [") and "000_cd01c28a230eedd7.txt" in out and "\n2. [" in out


@pytest.mark.unit
def test_search_json(env: Path, seeds_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["index", str(seeds_dir)])
    capsys.readouterr()
    assert main(["search", "G42", "-k", "3", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert len(items) == 3 and [i["rank"] for i in items] == [1, 2, 3]
    for item in items:
        assert {"rank", "score", "source", "chunk_id", "start", "end", "text"} <= set(item)
        original = (seeds_dir / item["source"]).read_text(encoding="utf-8")
        assert original[item["start"] : item["end"]] == item["text"]


@pytest.mark.unit
def test_index_dir_flag_after_subcommand(env: Path, seeds_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert main(["index", str(seeds_dir), "--index-dir", str(other)]) == 0
    assert (other / "manifest.json").exists() and not env.exists()
    assert main(["--index-dir", str(other), "search", "Grok"]) == 0


@pytest.mark.unit
def test_default_corpus(
    env: Path, monkeypatch: pytest.MonkeyPatch, seeds_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAG_CORPUS", str(seeds_dir))
    assert main(["index"]) == 0
    assert "Indexed 5 documents" in capsys.readouterr().out


@pytest.mark.unit
@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["search", "anything"], 1, "No index at"),
        (["index", "/no/such/folder"], 1, "No such file or folder: /no/such/folder"),
    ],
)
def test_errors_are_one_line(
    env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert [line for line in err if line.startswith("error:")] == [
        next(x for x in err if x.startswith("error:"))
    ]
    assert any(message in line for line in err) and "Traceback" not in "\n".join(err)


@pytest.mark.unit
def test_empty_query(env: Path, seeds_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["index", str(seeds_dir)])
    capsys.readouterr()
    assert main(["search", "  "]) == 2
    assert "error: The query is empty" in capsys.readouterr().err


@pytest.mark.unit
def test_unreadable_files_warn_and_the_rest_index(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "ok.txt").write_text("Readable text about falcons.\n")
    (folder / "bad.pdf").write_bytes(b"not a pdf")
    assert main(["index", str(folder)]) == 1  # indexed, but a script must notice the failure
    captured = capsys.readouterr()
    assert "warning: skipped" in captured.err and "bad.pdf" in captured.err
    assert "Indexed 1 documents" in captured.out and "1 failures" in captured.out
    assert "1 file(s) could not be indexed" in captured.err
    assert main(["index", "--keep-going", str(folder)]) == 0


@pytest.mark.unit
def test_nothing_readable(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "bad.docx").write_bytes(b"nope")
    assert main(["index", str(folder)]) == 1
    assert "error: No readable documents" in capsys.readouterr().err


@pytest.mark.unit
def test_corrupt_and_mismatched_index(
    env: Path, seeds_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["index", str(seeds_dir)])
    monkeypatch.setenv("RAG_EMBED_MODEL", "")  # the index was built with fake-hash
    capsys.readouterr()
    assert main(["search", "Grok"]) == 1
    assert "set RAG_EMBED_MODEL=fake-hash or rebuild" in capsys.readouterr().err
    monkeypatch.setenv("RAG_EMBED_MODEL", "fake-hash")
    data = next(p for p in env.iterdir() if p.name.startswith("data-"))
    (data / "docstore.json").write_text("{}")
    assert main(["search", "Grok"]) == 1
    assert "Rebuild it with `rag index`" in capsys.readouterr().err


@pytest.mark.unit
def test_missing_model(
    env: Path,
    seeds_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RAG_EMBED_MODEL", str(tmp_path / "models" / "nowhere" / "x"))
    assert main(["index", str(seeds_dir)]) == 1
    assert "error: No embedding model at" in capsys.readouterr().err


@pytest.mark.integration
def test_real_process_prints_one_line_and_no_traceback(tmp_path: Path, real_index_dir: Path) -> None:
    rag = shutil.which("rag", path=str(Path(sys.executable).parent)) or ""
    cmd = [rag] if rag else [sys.executable, "-m", "rag"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    missing = subprocess.run(
        [*cmd, "--index-dir", str(tmp_path / "none"), "search", "hello"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert f"error: No index at {tmp_path / 'none'}. Run `rag index` first." in missing.stderr
    ok = subprocess.run(
        [
            *cmd,
            "--index-dir",
            str(real_index_dir),
            "search",
            "Microsoft Inflection investment",
            "--json",
            "-k",
            "50",  # tens of KB through the pipe: the fast exit (rag.cli.console) must flush it all
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert ok.returncode == 0, ok.stderr
    items = json.loads(ok.stdout)
    assert any("$650 million" in i["text"] for i in items) and len(items) >= 30
    assert "Traceback" not in ok.stderr and "Loading weights" not in ok.stderr
