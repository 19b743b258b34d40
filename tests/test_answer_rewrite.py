"""Follow-up questions rewritten into standalone ones, deterministically."""

from __future__ import annotations

import pytest

from rag.records import Question, Turn
from rag.rewrite import is_follow_up, standalone_question

pytestmark = pytest.mark.unit
FIRST = "How much did Microsoft put into Inflection?"


@pytest.mark.parametrize(
    ("follow_up", "expected"),
    [
        ("And how much in G42?", "How much did Microsoft put into G42?"),
        ("What about OpenAI?", "How much did Microsoft put into OpenAI?"),
        ("And in G42?", "How much did Microsoft put into G42?"),
        ("And who was the founder of G42?", "Who was the founder of G42?"),
    ],
)
def test_entity_follow_ups_replace_the_entity(follow_up, expected):
    history = [Turn("user", FIRST), Turn("assistant", "Microsoft invested $650 million [1].")]
    assert standalone_question(follow_up, history) == Question(expected)


def test_pronoun_follow_up_carries_the_previous_question_as_typed_context():
    out = standalone_question("When did it happen?", [Turn("user", FIRST)])
    assert out == Question("When did it happen?", context=FIRST)
    assert out.retrieval_text == f"When did it happen? {FIRST}"


def test_standalone_questions_are_left_alone():
    asked = standalone_question("Who leads Microsoft AI?", [Turn("user", FIRST)])
    assert asked == Question("Who leads Microsoft AI?")
    assert standalone_question("And how much in G42?") == Question("And how much in G42?")
    assert not is_follow_up("What did Microsoft invest in OpenAI in 2019?")


def test_chained_follow_ups_resolve_in_order():
    history = [Turn("user", FIRST), Turn("assistant", "…"), Turn("user", "What about OpenAI?")]
    assert standalone_question("And in G42?", history).text == "How much did Microsoft put into G42?"


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
    assert standalone_question(follow_up, history).text == expected
