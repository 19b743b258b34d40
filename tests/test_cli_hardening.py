"""The CLI on hostile input and broken state: one clear line naming the fix, non-zero exit, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.cli import main

pytestmark = pytest.mark.unit


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in [v for v in os.environ if v.startswith("RAG_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("RAG_EMBED_MODEL", "fake-hash")
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "ix"))
    return tmp_path / "ix"


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "flags", [["--chunk-tokens", "5"], ["--chunk-tokens", "100000"], ["--chunk-overlap", "150"]]
)
def test_bad_chunk_settings(env, seeds_dir, capsys, flags):
    assert main(["index", str(seeds_dir), *flags]) == 2
    assert "--chunk-" in one_line_error(capsys)


def test_index_folder_that_is_a_file(env, seeds_dir, capsys):
    env.write_text("not a folder")
    assert main(["index", str(seeds_dir)]) == 2
    assert "is a file" in one_line_error(capsys)
    assert main(["search", "x"]) != 0
    one_line_error(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_index_folder_not_writable(env, seeds_dir, capsys):
    env.parent.chmod(0o500)
    try:
        assert main(["index", str(seeds_dir)]) == 2
        assert "not writable" in one_line_error(capsys)
    finally:
        env.parent.chmod(0o700)


def test_manifest_field_of_the_wrong_type_then_rag_index_repairs(env, seeds_dir, capsys):
    assert main(["index", str(seeds_dir)]) == 0
    manifest = json.loads((env / "manifest.json").read_text())
    manifest["dim"] = "wide"
    (env / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["search", "Inflection"]) != 0
    assert "rag index" in one_line_error(capsys)
    assert main(["index", str(seeds_dir)]) == 0
    assert main(["search", "Inflection"]) == 0


def test_changed_vector_width_under_the_same_model_name_rebuilds(env, seeds_dir, capsys, monkeypatch):
    from index import embedder
    from index.fake import HashingEmbedder

    assert main(["index", str(seeds_dir)]) == 0
    monkeypatch.setitem(embedder.EMBEDDERS, "fake-hash", lambda: HashingEmbedder(dim=64))
    capsys.readouterr()
    assert main(["index", str(seeds_dir)]) == 0
    assert "reused 0" in capsys.readouterr().out
    assert main(["search", "Inflection"]) == 0


@pytest.mark.integration
def test_non_utf8_bytes_in_a_question(tmp_path, seeds_dir):
    env = {**os.environ, "RAG_EMBED_MODEL": "fake-hash", "RAG_INDEX_DIR": str(tmp_path / "ix")}
    subprocess.run(
        [sys.executable, "-m", "rag", "index", str(seeds_dir)], env=env, check=True, capture_output=True
    )
    for cmd in (["search"], ["ask", "--backend", "extractive"]):
        run = subprocess.run(
            [os.fsencode(sys.executable), b"-m", b"rag", *[c.encode() for c in cmd], b"Inflection \xff\xfe?"],
            env=env,
            capture_output=True,
            timeout=300,
        )
        err = run.stderr.decode("utf-8", "replace")
        assert "Traceback" not in err, err
        assert run.returncode == 0 or (err.startswith("error: ") and err.count("\n") == 1), err
