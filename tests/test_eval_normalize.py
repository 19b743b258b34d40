"""Answer normalisation: equivalent phrasings of money, numbers, dates and percentages compare equal."""

from __future__ import annotations

import pytest

from eval.normalize import contains_phrase, normalize_answer

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "variants",
    [
        ["$650 million", "650 million dollars", "$650M", "US$650 million", "USD 650 million", "$650,000,000"],
        ["$1.5 billion", "1.5bn", "1,500 million", "$1.5B", "1.5 billion US dollars", "$1,500,000,000"],
        ["$4 trillion", "4 trillion dollars", "$4T", "4,000 billion"],
        ["ten days", "10 days", "Ten Days!"],
        ["twenty-five", "25", "twenty five"],
        ["20%", "20 percent", "20 per cent", "twenty percent"],
        ["November 2023", "Nov. 2023", "Nov 2023", "november, 2023"],
        ["3rd November", "3 November", "three Nov"],
        ["2032", "2032.", "(2032)"],
        ["The Microsoft's AI", "microsoft ai", "a Microsoft AI"],
        ["in‑house", "in-house", "in house"],  # U+2011 non-breaking hyphen, as in the seed articles
        ["OpenAI’s profits", "OpenAI's profits"],
    ],
)
def test_equivalent_forms_normalise_identically(variants):
    forms = {normalize_answer(v) for v in variants}
    assert len(forms) == 1, forms


@pytest.mark.parametrize(
    ("a", "b"),
    [("$650 million", "$65 million"), ("$1.5 billion", "$1.5 million"), ("2032", "2030"),
     ("ten days", "ten weeks")],
)
def test_different_values_stay_different(a, b):
    assert normalize_answer(a) != normalize_answer(b)


def test_examples():
    assert normalize_answer("US$650M") == "650000000"
    assert normalize_answer("The deal: $1.5 billion!") == "deal 1500000000"
    assert normalize_answer("GPT-3.5") == "gpt 3.5"
    assert normalize_answer("B2B and 5 m") == "b2b and 5 m"  # abbreviations only scale a figure glued to them
    assert normalize_answer("Microsoft invested [1] in it [2, 3].") == "microsoft invested in it"


def test_contains_phrase_matches_whole_tokens_only():
    assert contains_phrase("Microsoft put US$650M into Inflection [1].", "$650 million")
    assert contains_phrase("It was resolved within just ten days.", "10 days")
    assert not contains_phrase("It cost $6,500 million.", "$650 million")
    assert not contains_phrase("in 20320", "2032")
    assert not contains_phrase("anything", "")
