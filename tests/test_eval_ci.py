"""The CI evaluation gate: `rag eval --suite` over every corpus must stay within eval/thresholds.json.

`extractive` runs every gold set of every corpus (tuning and held-out halves; no language model, well under
a second a question), so retrieval, citation and refusal regressions show on all three domains. `local`
(the default model, several seconds a question on 2 cores) runs a small fixed subset of each corpus's
held-out half, marked slow. Thresholds are per corpus, a little below the measured values (the file's
`measured`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import main

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "eval" / "suite.json"
THRESHOLDS = ROOT / "eval" / "thresholds.json"


def _clean_env(monkeypatch) -> None:
    for name in ("RAG_BACKEND", "RAG_K", "RAG_LLM_BASE_URL", "RAG_LLM_MODEL", "RAG_MIN_SUPPORT",
                 "RAG_JUDGE"):
        monkeypatch.delenv(name, raising=False)


def _suite_eval(suite: Path, out: Path, backend: str, index_root: Path, monkeypatch) -> dict:
    _clean_env(monkeypatch)
    code = main(["eval", "--suite", str(suite), "--out", str(out), "--backend", backend,
                 "--index-root", str(index_root), "--thresholds", str(THRESHOLDS), "--no-progress"])
    summary = json.loads((out / "summary.json").read_text())
    assert code == 0, f"{backend} evaluation regressed: see {out}/summary.md and the FAIL lines above"
    return summary


@pytest.fixture(scope="module")
def index_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("suite-indexes")


@pytest.mark.integration
def test_extractive_over_every_corpus_and_half(tmp_path, index_root, monkeypatch):
    summary = _suite_eval(SUITE, tmp_path / "extractive", "extractive", index_root, monkeypatch)
    rows = {(r["corpus"], r["split"]) for r in summary["rows"]}
    assert rows == {(c, s) for c in ("seeds", "handbook", "pydocs") for s in ("tune", "heldout")}
    assert all(r["questions"] >= 20 for r in summary["rows"])


@pytest.mark.integration
@pytest.mark.slow
def test_default_model_on_a_subset_of_each_held_out_half(tmp_path, index_root, monkeypatch):
    ids = json.loads(THRESHOLDS.read_text())["local"]["ids"]
    spec = json.loads(SUITE.read_text())
    subset: dict[str, dict] = {}
    for corpus, wanted in ids.items():
        lines = [line for line in (ROOT / spec[corpus]["heldout"]).read_text().splitlines()
                 if line.strip() and json.loads(line)["id"] in wanted]
        assert len(lines) == len(wanted), f"{corpus}: ids missing from the held-out half"
        path = tmp_path / f"{corpus}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        subset[corpus] = {"paths": [str(ROOT / p) for p in spec[corpus]["paths"]], "heldout": str(path)}
    suite = tmp_path / "subset-suite.json"
    suite.write_text(json.dumps(subset))
    summary = _suite_eval(suite, tmp_path / "local", "local", index_root, monkeypatch)
    assert {r["corpus"] for r in summary["rows"]} == set(ids)
