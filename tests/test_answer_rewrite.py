"""Follow-up questions rewritten into standalone ones, deterministically."""

from __future__ import annotations

import pytest

from rag.records import Turn
from rag.rewrite import is_follow_up, standalone_question

pytestmark = pytest.mark.unit
FIRST = "How much did Microsoft invest in Inflection?"


@pytest.mark.parametrize(
    ("follow_up", "expected"),
    [
        ("And how much in G42?", "How much did Microsoft invest in G42?"),
        ("What about OpenAI?", "How much did Microsoft invest in OpenAI?"),
        ("And in G42?", "How much did Microsoft invest in G42?"),
        ("And who founded G42?", "Who founded G42?"),
    ],
)
def test_entity_follow_ups_replace_the_entity(follow_up, expected):
    history = [Turn("user", FIRST), Turn("assistant", "Microsoft invested $650 million [1].")]
    assert standalone_question(follow_up, history) == expected


def test_pronoun_follow_up_carries_the_previous_question_as_context():
    out = standalone_question("When did it happen?", [Turn("user", FIRST)])
    assert out.startswith("When did it happen?") and FIRST in out


def test_standalone_questions_are_left_alone():
    assert standalone_question("Who leads Microsoft AI?", [Turn("user", FIRST)]) == "Who leads Microsoft AI?"
    assert standalone_question("And how much in G42?") == "And how much in G42?"
    assert not is_follow_up("What did Microsoft invest in OpenAI in 2019?")


def test_chained_follow_ups_resolve_in_order():
    history = [Turn("user", FIRST), Turn("assistant", "…"), Turn("user", "What about OpenAI?")]
    assert standalone_question("And in G42?", history) == "How much did Microsoft invest in G42?"


@pytest.mark.unit
@pytest.mark.parametrize(
    "follow_up, expected",
    [
        ("And when did Microsoft first invest in OpenAI?", "When did Microsoft first invest in OpenAI?"),
        ("Also, who leads Microsoft AI today?", "Who leads Microsoft AI today?"),
    ],
)
def test_a_complete_question_after_and_stands_on_its_own(follow_up: str, expected: str) -> None:
    history = [Turn("user", "Who is driving Microsoft's strategy to become independent from OpenAI?")]
    assert standalone_question(follow_up, history) == expected
