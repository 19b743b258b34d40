"""Tests hold no case copied from an evaluation set: no gold question appears verbatim in a test file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parent.parent


def test_no_gold_question_is_copied_into_tests():
    questions = {
        json.loads(line)["question"].strip().lower()
        for path in (ROOT / "eval" / "datasets").glob("*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    }
    copied = [(test.name, q) for test in (ROOT / "tests").glob("*.py")
              for q in questions if q in test.read_text(encoding="utf-8").lower()]
    assert not copied, f"gold questions copied into tests: {copied}"
