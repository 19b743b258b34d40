"""ALCE-style citation recall and precision (eval/judged.py) with a scripted entailment function."""

from __future__ import annotations

import pytest

from eval.judged import add_judged_metrics, citation_scores

pytestmark = pytest.mark.unit


def entails(premise: str, hypothesis: str) -> float:
    """Entailed when every word of the hypothesis (minus its final stop) is in the premise."""
    words = hypothesis.lower().rstrip(".").split()
    return 1.0 if all(w in premise.lower() for w in words) else 0.0


def record(answer: str, citations: list[tuple[int, str]], refused: bool = False) -> dict:
    chunks = {"a": "alpha beta gamma", "b": "delta epsilon", "c": "unrelated words"}
    return {"answer": answer, "refused": refused, "metrics": {},
            "citations": [{"n": n, "chunk_id": cid, "quote": ""} for n, cid in citations],
            "retrieved": [{"chunk_id": k, "text": v} for k, v in chunks.items()]}


def test_supported_single_citation_scores_one():
    assert citation_scores(record("Alpha beta [1].", [(1, "a")]), entails) == (1.0, 1.0)


def test_unsupported_sentence_scores_zero():
    assert citation_scores(record("Alpha delta [1].", [(1, "a")]), entails) == (0.0, 0.0)


def test_a_sentence_needing_two_passages_keeps_both_and_flags_an_extra_one():
    r = record("Alpha delta [1, 2, 3].", [(1, "a"), (2, "b"), (3, "c")])
    recall, precision = citation_scores(r, entails)
    assert recall == 1.0 and precision == pytest.approx(2 / 3)  # "unrelated words" is irrelevant


def test_declined_answers_are_not_scored_and_averages_skip_them():
    records = [record("Alpha beta [1].", [(1, "a")]), record("The documents don't say.", [], refused=True)]
    summary = add_judged_metrics(records, entails)
    assert summary == {"judged_citation_recall": 1.0, "judged_citation_precision": 1.0}
    assert records[1]["metrics"]["judged_citation_recall"] is None
