"""The CI evaluation gate: `rag eval` with the real index over seeds/ must stay above eval/thresholds.json.

`extractive` runs the whole gold set (no language model: about a second a question on 2 cores), so every
retrieval, citation and refusal regression shows. `local` (Qwen 0.5B, several seconds a question) runs a
small fixed subset, marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.cli import check_thresholds, load_thresholds
from rag.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "eval" / "datasets" / "seeds.jsonl"
THRESHOLDS = ROOT / "eval" / "thresholds.json"


def _rag_eval(config, dataset: Path, out: Path, backend: str, monkeypatch) -> dict:
    for name in ("RAG_BACKEND", "RAG_K", "RAG_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    section = json.loads(THRESHOLDS.read_text())[backend]
    code = main(["--index-dir", config.index_dir, "eval", "--dataset", str(dataset), "--out", str(out),
                 "--backend", backend, "-k", str(section.get("k", 5)), "--thresholds", str(THRESHOLDS),
                 "--no-progress"])
    report = json.loads((out / "report.json").read_text())
    mins, maxs = load_thresholds(THRESHOLDS, backend)
    failures = check_thresholds(report["metrics"], mins, maxs)
    assert not failures, f"{backend} evaluation regressed (see {out}/report.md): {failures}"
    assert code == 0
    return report


@pytest.mark.integration
def test_extractive_gold_set_meets_thresholds(real_config, tmp_path, monkeypatch):
    report = _rag_eval(real_config, GOLD, tmp_path / "extractive", "extractive", monkeypatch)
    m = report["metrics"]
    assert m["questions"] >= 60 and m["errors"] == 0
    assert report["index_manifest"] is not None
    assert (tmp_path / "extractive" / "report.md").read_text().count("### `") == sum(
        1 for line in (tmp_path / "extractive" / "results.jsonl").read_text().splitlines()
        if json.loads(line)["metrics"]["outcome"] != "pass")


@pytest.mark.integration
@pytest.mark.slow
def test_local_model_subset_meets_thresholds(real_config, tmp_path, monkeypatch):
    ids = json.loads(THRESHOLDS.read_text())["local"]["ids"]
    subset = tmp_path / "subset.jsonl"
    lines = [line for line in GOLD.read_text().splitlines() if json.loads(line)["id"] in ids]
    assert len(lines) == len(ids)
    subset.write_text("\n".join(lines) + "\n")
    report = _rag_eval(real_config, subset, tmp_path / "local", "local", monkeypatch)
    assert report["metrics"]["questions"] == len(ids)
