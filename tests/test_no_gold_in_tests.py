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


def test_the_prompt_examples_share_no_question_and_no_passage_text_with_the_evaluation():
    """The worked examples shown to the model are made up: nothing comes from a gold set or a corpus."""
    raw = json.loads((ROOT / "rag" / "prompts" / "examples.json").read_text(encoding="utf-8"))
    examples = [e for e in raw if "question" in e]
    gold = " ".join(path.read_text(encoding="utf-8").lower()
                    for path in (ROOT / "eval" / "datasets").glob("*.jsonl"))
    corpora = " ".join(path.read_text(encoding="utf-8", errors="replace").lower()
                       for folder in ("seeds", "eval/corpora")
                       for path in (ROOT / folder).rglob("*") if path.is_file())
    for example in examples:
        assert example["question"].lower() not in gold
        for source in example["sources"]:
            for sentence in source.split(". "):
                if len(sentence) > 30:
                    assert sentence.lower() not in corpora, sentence
