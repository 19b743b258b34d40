"""`rag eval --compare`: metrics that moved and questions that changed outcome, on hand-made run folders."""

from __future__ import annotations

import json

import pytest

from eval.compare import RunFolderError, compare_runs, render_comparison, verdict

pytestmark = pytest.mark.unit


def _run(folder, metrics, outcomes):
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps({"run": {"backend": "x", "k": 5}, "metrics": metrics}))
    (folder / "results.jsonl").write_text("".join(
        json.dumps({"id": q, "question": f"Question {q}?", "metrics": {"outcome": o}}) + "\n"
        for q, o in outcomes.items()))
    return folder


def test_compare_by_hand(tmp_path):
    a = _run(tmp_path / "a", {"questions": 4, "answer_accuracy": 0.5, "recall@5": 0.9,
                              "false_refusal_rate": 0.2, "latency_total_ms_p50": 900.0, "faithfulness": None},
             {"q1": "pass", "q2": "fail", "q3": "error", "q4": "pass", "gone": "pass"})
    b = _run(tmp_path / "b", {"questions": 4, "answer_accuracy": 0.75, "recall@5": 0.9,
                              "false_refusal_rate": 0.3, "latency_total_ms_p50": 700.0, "faithfulness": 0.8},
             {"q1": "pass", "q2": "pass", "q3": "pass", "q4": "fail", "new": "fail"})
    cmp = compare_runs(a, b)
    assert cmp.moved == [
        ("answer_accuracy", 0.5, 0.75, "better"),
        ("false_refusal_rate", 0.2, 0.3, "worse"),
        ("latency_total_ms_p50", 900.0, 700.0, "better"),
        ("faithfulness", None, 0.8, "changed"),
    ]
    assert (cmp.fixed, cmp.broken, cmp.only_a, cmp.only_b) == (["q2", "q3"], ["q4"], ["gone"], ["new"])
    text = render_comparison(cmp, "a", "b")
    assert "| `answer_accuracy` | 0.5 | 0.75 | +0.25 | better |" in text
    assert "## Broken (right in A, not in B): 1" in text and "- `q4` Question q4?" in text
    assert "recall@5" not in text


def test_verdict_direction():
    assert verdict("recall@5", 0.8, 0.9) == "better"
    assert verdict("error_rate", 0.0, 0.1) == "worse"
    assert verdict("latency_first_token_ms_p90", 10.0, 20.0) == "worse"


def test_not_a_run_folder(tmp_path):
    with pytest.raises(RunFolderError, match="is not an evaluation run folder"):
        compare_runs(tmp_path, tmp_path)


def test_cli_compare(tmp_path, capsys):
    from rag.cli import main

    a = _run(tmp_path / "a", {"answer_accuracy": 0.5}, {"q1": "fail"})
    b = _run(tmp_path / "b", {"answer_accuracy": 1.0}, {"q1": "pass"})
    assert main(["eval", "--compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "## Fixed (right in B, not in A): 1" in out and "backend x, k=5" in out
