"""The gold-set loader (validation, line numbers) and the gold set itself, checked against the seeds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from eval.dataset import DatasetError, check_sources, load_dataset, parse_lines
from eval.normalize import normalize_answer
from index.errors import RagError

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "eval" / "datasets" / "seeds.jsonl"
SEEDS = ROOT / "seeds"


def _line(**obj):
    return json.dumps(obj)


def test_valid_lines_parse_with_defaults():
    items = parse_lines([
        _line(question="Who?", answers=["Nadella"], sources=["a.txt"]),
        "",
        "# a comment",
        _line(id="q2", question="Unknown?", answers=[], sources=[], tags=["unanswerable"]),
    ])
    assert [i.id for i in items] == ["line-1", "q2"]
    assert items[0].answerable and not items[1].answerable
    assert items[1].tags == ("unanswerable",) and items[1].line == 4


def test_every_bad_line_is_reported_by_number():
    lines = [
        _line(id="ok", question="Fine?", answers=["x"], sources=["a.txt"]),
        "{not json",
        _line(question="", answers=["x"], sources=[]),
        _line(question="No answers key", sources=[]),
        _line(question="Wrong type", answers="x", sources=[]),
        "[1, 2]",
        _line(id="ok", question="Dup", answers=[], sources=[]),
        _line(question="Extra", answers=[], sources=[], colour="red"),
    ]
    with pytest.raises(DatasetError) as info:
        parse_lines(lines, name="gold.jsonl")
    msg = str(info.value)
    assert isinstance(info.value, RagError)
    assert "gold.jsonl has 7 invalid line(s)" in msg
    for n, fragment in [(2, "not valid JSON"), (3, '"question"'), (4, '"answers" is missing'),
                        (5, '"answers" must be a list'), (6, "expected a JSON object"),
                        (7, "duplicate id 'ok' (first on line 1)"), (8, "unknown key(s) colour")]:
        assert f"line {n}: {fragment}" in msg


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DatasetError, match="No dataset at"):
        load_dataset(tmp_path / "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n# nothing\n")
    with pytest.raises(DatasetError, match="contains no questions"):
        load_dataset(empty)


def test_check_sources_names_unknown_documents():
    items = parse_lines([_line(question="Q?", answers=["x"], sources=["a.txt", "typo.txt"])])
    with pytest.raises(DatasetError, match="line 1: source\\(s\\) not in the index: typo.txt"):
        check_sources(items, ["a.txt"])


# --- the gold set ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gold():
    return load_dataset(GOLD)


def test_gold_set_shape(gold):
    assert len(gold) >= 60
    seeds = {p.name for p in SEEDS.glob("*.txt")}
    check_sources(gold, seeds)
    per_article = Counter(s for item in gold for s in item.sources)
    assert set(per_article) == seeds and min(per_article.values()) >= 8, per_article
    unanswerable = [i for i in gold if not i.answerable]
    assert len(unanswerable) >= 10
    assert sum("in-domain" in i.tags for i in unanswerable) >= 8
    assert sum(len(i.sources) >= 2 for i in gold) >= 5
    assert sum("paraphrase" in i.tags for i in gold) >= 5
    assert all(i.sources for i in gold if i.answerable)


def test_every_reference_answer_is_in_its_sources(gold):
    """Catches typos: one reference of each answerable item must occur in the text of one of its sources."""
    texts = {p.name: f" {normalize_answer(p.read_text(encoding='utf-8'))} " for p in SEEDS.glob("*.txt")}
    missing = [
        item.id for item in gold if item.answerable
        and not any(f" {normalize_answer(a)} " in texts[s] for a in item.answers for s in item.sources)
    ]
    assert not missing, f"references not found in their sources: {missing}"


def test_paraphrases_share_no_content_word_with_the_answering_paragraph(gold):
    function_words = set("what which who whom when where how is are was were did does do of to in into for "
                         "by on at its it and or with from that this be has have had must until".split())
    for item in (i for i in gold if "paraphrase" in i.tags):
        question = set(normalize_answer(item.question).split()) - function_words
        for source in item.sources:
            for para in (SEEDS / source).read_text(encoding="utf-8").splitlines():
                norm = f" {normalize_answer(para)} "
                if any(f" {normalize_answer(a)} " in norm for a in item.answers):
                    assert not question & set(norm.split()), (item.id, question & set(norm.split()))
