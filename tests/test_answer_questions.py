"""What a question asks for (rag/questions.py) and the lexical helpers it leans on, on hand-made cases."""

from __future__ import annotations

import pytest

from rag.grounding import content_words, is_heading, name_in, names_of, plain_hyphens
from rag.questions import answer_type, asked_words, has_answer_type, mentions, modifier_names

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("dash", ["-", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014"])
def test_hyphen_variants_match_as_one_hyphen(dash):
    text = f"the Microsoft{dash}OpenAI deal"
    assert plain_hyphens(text) == "the Microsoft-OpenAI deal"
    assert name_in("Microsoft-OpenAI", text) and name_in("OpenAI", text)


def test_soft_hyphens_vanish_and_compounds_split_into_names():
    assert name_in("OpenAI", "talks with Open\u00adAI")
    assert names_of("Is the Microsoft\u2011OpenAI deal over?") == ["Microsoft", "OpenAI"]
    assert "in-house" in content_words("in\u2011house models")


@pytest.mark.parametrize(("sentence", "title", "heading"), [
    ("Microsoft's AI Investments and OpenAI Crisis", "", True),
    ("Public Reactions to Microsoft's Diversification Strategy", "", True),
    ("The deal", "The Deal", True),
    ("Microsoft plans a shift away from OpenAI.", "", False),
    ("Editorial Responsibility: clarus.news | Fact-Check: 2024", "", False),
    ("Source: PressReader PressReader", "", False),
])
def test_headings_are_told_from_statements(sentence, title, heading):
    assert is_heading(sentence, title) is heading


@pytest.mark.parametrize(("question", "descriptive"), [
    ("When did the Windows maker fund the San Francisco research lab?", ["Windows", "San", "Francisco"]),
    ("Until when must the lab rely on Redmond's hosting platform?", ["Redmond"]),
    ("Which Japanese conglomerate is helping the lab?", ["Japanese"]),
    ("Who founded G42?", []),
    ("How much did Microsoft invest in Mistral?", []),
    ("Did Microsoft invest in Mistral last year?", []),
])
def test_descriptive_names_are_those_used_as_modifiers(question, descriptive):
    assert modifier_names(question) == descriptive


def test_asked_words_leave_out_names_and_question_words():
    assert asked_words("Who founded G42?") == {"found"}
    assert asked_words("What year did Microsoft invest in OpenAI?") == {"invest"}


def test_mentions_allows_a_stem_and_its_longer_form():
    assert mentions({"oust"}, {"ouster", "altman"})
    assert mentions({"specialize"}, {"specializ"})
    assert not mentions({"found"}, {"fundamental"})
    assert not mentions({"study"}, {"strategy"})


@pytest.mark.parametrize(("question", "kind"), [
    ("On which exact day was he reinstated?", "date"),
    ("What date was the deal signed?", "date"),
    ("When was he ousted?", "year"),
    ("What sum went into the Emirati group?", "money"),
    ("Who founded G42?", None),
])
def test_answer_type(question, kind):
    assert answer_type(question) == kind


def test_a_date_needs_a_day_not_just_a_month():
    assert has_answer_type("He returned on November 22, 2023.", "date")
    assert has_answer_type("He returned on 22 November.", "date")
    assert not has_answer_type("He returned in November 2023.", "date")
