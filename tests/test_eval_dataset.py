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


# --- the gold sets of the suite ------------------------------------------------------------------
SUITE = json.loads((ROOT / "eval" / "suite.json").read_text(encoding="utf-8"))
CORPORA = sorted(k for k in SUITE if not k.startswith("_"))


def _texts(corpus: str) -> dict[str, str]:
    """Source name -> the text the loader extracts (what gets indexed), normalised for matching."""
    from index.loaders import load_paths

    docs, failures = load_paths([ROOT / p for p in SUITE[corpus]["paths"]])
    assert not failures, failures
    return {d.source: f" {normalize_answer(d.text)} " for d in docs}


def _halves(corpus: str):
    return {split: load_dataset(ROOT / SUITE[corpus][split]) for split in ("tune", "heldout")}


def test_the_suite_has_three_corpora_of_different_domains():
    assert {"seeds", "handbook", "pydocs"} <= set(CORPORA)


@pytest.mark.parametrize("corpus", CORPORA)
def test_gold_set_shape(corpus):
    halves = _halves(corpus)
    items = halves["tune"] + halves["heldout"]
    assert len(items) >= 40 and sum(not i.answerable for i in items) >= 10
    for half in halves.values():
        assert sum(not i.answerable for i in half) >= 5, "each half needs unanswerable questions"
    ids = Counter(i.id for i in items)
    assert max(ids.values()) == 1, "an id is in both halves"
    questions = Counter(i.question.lower() for i in items)
    assert max(questions.values()) == 1, "a question is in both halves"
    check_sources(items, _texts(corpus))
    assert all(i.sources for i in items if i.answerable)
    assert all(not i.sources for i in items if not i.answerable)


@pytest.mark.parametrize("corpus", CORPORA)
def test_every_reference_answer_is_in_its_sources(corpus):
    """Catches typos: one reference of each answerable item must occur in the text of one of its sources."""
    texts = _texts(corpus)
    items = [i for half in _halves(corpus).values() for i in half]
    missing = [
        item.id for item in items if item.answerable
        and not any(f" {normalize_answer(a)} " in texts[s] for a in item.answers for s in item.sources)
    ]
    assert not missing, f"references not found in their sources: {missing}"


def test_seed_paraphrases_share_no_content_word_with_the_answering_paragraph():
    function_words = set("what which who whom when where how is are was were did does do of to in into for "
                         "by on at its it and or with from that this be has have had must until".split())
    gold = [i for half in _halves("seeds").values() for i in half]
    assert sum("paraphrase" in i.tags for i in gold) >= 5
    for item in (i for i in gold if "paraphrase" in i.tags):
        question = set(normalize_answer(item.question).split()) - function_words
        for source in item.sources:
            for para in (SEEDS / source).read_text(encoding="utf-8").splitlines():
                norm = f" {normalize_answer(para)} "
                if any(f" {normalize_answer(a)} " in norm for a in item.answers):
                    assert not question & set(norm.split()), (item.id, question & set(norm.split()))


def test_history_is_parsed_into_turns():
    items = parse_lines([_line(question="And the other one?", answers=["x"], sources=["a.txt"],
                               history=[{"role": "user", "content": "First?"},
                                        {"role": "assistant", "content": "Yes [1]."}])])
    assert items[0].history == (("user", "First?"), ("assistant", "Yes [1]."))
    with pytest.raises(DatasetError, match='"history" must be a list'):
        parse_lines([_line(question="Q?", answers=[], sources=[], history=[{"role": "bot", "content": "x"}])])
