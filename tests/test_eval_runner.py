"""The runner and the `rag eval` command, driven through a scripted fake pipeline (no index, no model)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from eval import cli as eval_cli
from eval.dataset import DatasetError, parse_lines
from eval.runner import ask_one, metric_ks, run_questions
from index.errors import BackendError
from index.records import Chunk, Hit
from rag.records import Answer, Citation, Final, Sources, Token

pytestmark = pytest.mark.unit

TEXTS = {
    "a.txt": "Microsoft's $650 million investment in Inflection indicates its value.",
    "b.txt": "Microsoft's $1.5 billion investment in G42, based in Abu Dhabi.",
}


def _hit(source: str, rank: int) -> Hit:
    text = TEXTS[source]
    return Hit(Chunk(f"c-{source}", f"d-{source}", source, source, text, 0, len(text)), 1.0 / rank, rank)


class FakePipeline:
    """Scripted answers: question -> (answer text, cited sources, refused); "boom" raises."""

    def __init__(self, script: dict[str, tuple[str, list[str], bool]]):
        self.script = script
        self.calls: list[tuple[str, int | None, str | None]] = []
        self.warmed: list[str | None] = []

    def document(self, source: str):
        return object() if source in TEXTS else None

    def warm_up(self, backend: str | None = None) -> None:
        self.warmed.append(backend)

    def stream(self, question, history=(), k=None, backend=None) -> Iterator:
        self.calls.append((question, k, backend))
        if question == "boom":
            raise BackendError("Backend unreachable. Start it.")
        text, cited, refused = self.script[question]
        hits = tuple(_hit(s, i) for i, s in enumerate(["b.txt", "a.txt"][: k or 5], start=1))
        yield Sources(hits)
        for word in text.split(" "):
            yield Token(word + " ")
        cites = tuple(Citation(i, s, f"c-{s}", 0, len(TEXTS[s]), TEXTS[s], s) for i, s in enumerate(cited, 1))
        yield Final(Answer(question, text, refused, cites, hits, backend or "fake", {"total": 1.0}))


SCRIPT = {
    "Inflection?": ("Microsoft invested $650M in Inflection [1].", ["a.txt"], False),
    "G42?": ("I don't know.", [], True),
    "Copilot price?": ("The documents do not say.", [], True),
}
LINES = [
    json.dumps({"id": "q1", "question": "Inflection?", "answers": ["$650 million"], "sources": ["a.txt"]}),
    json.dumps({"id": "q2", "question": "G42?", "answers": ["$1.5 billion"], "sources": ["b.txt"]}),
    json.dumps({"id": "q3", "question": "Copilot price?", "answers": [], "sources": [],
                "tags": ["unanswerable"]}),
    json.dumps({"id": "q4", "question": "boom", "answers": ["x"], "sources": ["a.txt"]}),
]


def test_metric_ks():
    assert metric_ks(5) == [1, 3, 5] and metric_ks(2) == [1, 2] and metric_ks(1) == [1]


def test_ask_one_records_the_ask_json_fields_and_latency():
    item = parse_lines(LINES[:1])[0]
    r = ask_one(FakePipeline(SCRIPT), item, k=2, backend="extractive")
    assert r["id"] == "q1" and r["answer"].startswith("Microsoft") and r["error"] is None
    assert r["citations"][0]["source"] == "a.txt"
    assert [h["source"] for h in r["retrieved"]] == ["b.txt", "a.txt"]
    assert r["expected_answers"] == ["$650 million"] and r["backend"] == "extractive"
    assert r["draft"] == "Microsoft invested $650M in Inflection [1]. "
    lat = r["latency_ms"]
    assert 0 <= lat["retrieval"] <= lat["first_token"] <= lat["total"]


def test_run_questions_scores_and_survives_errors():
    pipe = FakePipeline(SCRIPT)
    records = run_questions(pipe, parse_lines(LINES), k=2, backend="extractive", progress=False)
    outcome = {r["id"]: r["metrics"]["outcome"] for r in records}
    assert outcome == {"q1": "pass", "q2": "fail", "q3": "pass", "q4": "error"}
    err = records[3]
    assert err["error"] == "BackendError: Backend unreachable. Start it."
    assert err["latency_ms"]["total"] is None
    assert records[0]["metrics"]["mrr@2"] == 0.5 and records[0]["metrics"]["citation_precision"] == 1.0
    assert all(call[1:] == (2, "extractive") for call in pipe.calls)


@pytest.fixture
def fake_cli(monkeypatch, tmp_path):
    pipe = FakePipeline(SCRIPT)
    monkeypatch.setattr(eval_cli, "_build_pipeline", lambda config: pipe)
    data = tmp_path / "gold.jsonl"
    data.write_text("\n".join(LINES[:3]) + "\n")
    return pipe, data


def _main(*argv: str) -> int:
    from rag.cli import main

    return main(["eval", *argv])


def test_rag_eval_writes_the_report(fake_cli, tmp_path, capsys):
    pipe, data = fake_cli
    out = tmp_path / "run"
    assert _main("--dataset", str(data), "--out", str(out), "--backend", "extractive", "-k", "2",
                 "--no-progress") == 0
    assert pipe.warmed == ["extractive"]
    assert {p.name for p in out.iterdir()} >= {"results.jsonl", "report.json", "report.md", "latency.png",
                                                "per_article.png"}
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == ["q1", "q2", "q3"]
    assert {"question", "answer", "refused", "citations", "retrieved", "backend", "timings_ms", "reasons",
            "support", "id", "expected_answers", "expected_sources", "metrics"} <= set(lines[0])
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["answer_accuracy"] == 0.5 and report["metrics"]["true_refusal_rate"] == 1.0
    assert report["config"]["backend"] == "extractive" and report["config"]["k"] == 2
    assert report["run"]["k"] == 2 and "python" in report["versions"] and "run_s" in report["timings"]
    md = (out / "report.md").read_text()
    assert "## Failures (1 of 3)" in md and "G42?" in md and "$1.5 billion" in md
    assert "one expected source is among the top-2" in md  # definitions are in the report
    assert "![latency distribution](latency.png)" in md
    assert "answer_accuracy 0.5" in capsys.readouterr().out


def test_thresholds_fail_the_command(fake_cli, tmp_path, capsys):
    _, data = fake_cli
    thresholds = tmp_path / "t.json"
    thresholds.write_text(json.dumps({"min": {"true_refusal_rate": 1.0}, "max": {"false_refusal_rate": 0.2}}))
    code = _main("--dataset", str(data), "--out", str(tmp_path / "r"), "--thresholds", str(thresholds),
                 "--fail-under", "answer_accuracy=0.4", "--no-progress")
    err = capsys.readouterr().err
    assert code == 1 and "FAIL false_refusal_rate = 0.5, above the maximum 0.2" in err
    assert "answer_accuracy" not in err and "true_refusal_rate" not in err
    assert _main("--dataset", str(data), "--out", str(tmp_path / "r2"), "--fail-under", "answer_accuracy=0.5",
                 "--no-progress") == 0


def test_bad_dataset_aborts_before_the_pipeline_is_built(monkeypatch, tmp_path, capsys):
    def no_pipeline(config):
        raise AssertionError("the pipeline must not be built for a bad dataset")

    monkeypatch.setattr(eval_cli, "_build_pipeline", no_pipeline)
    data = tmp_path / "bad.jsonl"
    data.write_text(LINES[0] + "\n{oops\n")
    assert _main("--dataset", str(data), "--out", str(tmp_path / "x")) == DatasetError.exit_code
    assert "line 2: not valid JSON" in capsys.readouterr().err


def test_unknown_source_aborts_before_any_question(fake_cli, tmp_path, capsys):
    pipe, data = fake_cli
    data.write_text(json.dumps({"question": "Inflection?", "answers": ["x"], "sources": ["typo.txt"]}) + "\n")
    assert _main("--dataset", str(data), "--out", str(tmp_path / "x")) == 2
    assert "typo.txt" in capsys.readouterr().err and pipe.calls == []


def test_check_thresholds_and_bad_threshold_args(tmp_path):
    assert eval_cli.check_thresholds({"recall@5": 0.7}, {"recall@5": 0.9}) == [
        "recall@5 = 0.7, below the minimum 0.9"]
    assert eval_cli.check_thresholds({"x": None}, {"x": 0.1}) == ["x was not measured (minimum 0.1)"]
    sections = tmp_path / "sections.json"
    sections.write_text(json.dumps({"extractive": {"min": {"recall@5": 0.9}}, "local": {"max": {"x": 1}}}))
    assert eval_cli.load_thresholds(sections, "extractive") == ({"recall@5": 0.9}, {})
    assert eval_cli.load_thresholds(sections, "local") == ({}, {"x": 1.0})
    with pytest.raises(Exception, match="no section for backend 'openai'; it has extractive, local"):
        eval_cli.load_thresholds(sections, "openai")
    bad = tmp_path / "t.json"
    bad.write_text("[1]")
    with pytest.raises(Exception, match="Cannot use thresholds file"):
        eval_cli.load_thresholds(bad)
    with pytest.raises(SystemExit):
        _main("--fail-under", "recall@5")


@pytest.mark.unit
def test_latency_plot_keeps_zero_millisecond_measurements(tmp_path):
    from eval.report import plot_latency

    records = [{"latency_ms": {"first_token": 0.0, "total": 0.0}}, {"latency_ms": {"first_token": None}}]
    assert plot_latency(records, tmp_path / "latency.png")
    assert (tmp_path / "latency.png").stat().st_size > 0
    assert not plot_latency([{"latency_ms": {"first_token": None, "total": None}}], tmp_path / "none.png")
