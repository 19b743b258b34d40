"""Votes appended to the feedback JSONL."""

from __future__ import annotations

import pytest

from ui.feedback import normalize_vote, read_feedback, record_feedback

pytestmark = pytest.mark.unit


def test_record_and_read(tmp_path):
    path = tmp_path / "sub" / "feedback.jsonl"
    record_feedback(path, vote=True, question="q", answer="a [1]", citations=[{"n": 1}], backend="fake")
    record_feedback(path, vote="Dislike", question="q2", answer="a2")
    rows = read_feedback(path)
    assert [r["vote"] for r in rows] == ["up", "down"]
    assert rows[0]["citations"] == [{"n": 1}] and rows[0]["question"] == "q" and rows[0]["ts"]


@pytest.mark.parametrize("raw, vote", [(True, "up"), (False, "down"), ("Like", "up"), ("down", "down")])
def test_normalize_vote(raw, vote):
    assert normalize_vote(raw) == vote


def test_unknown_vote_rejected():
    with pytest.raises(ValueError):
        normalize_vote("maybe")
