"""Draft answers parsed into claims with their citations, and written back with renumbered citations."""

from __future__ import annotations

import pytest
from test_answer_fakes import DOCS, make_hit

from rag.claims import parse_claims, render, strip_citations

pytestmark = pytest.mark.unit


def test_parse_claims_reads_brackets_ranges_and_trailing_markers():
    claims = parse_claims("Answer: A rose 1.5% [2]. B fell [1, 3]. C held. [4] D [Source 5] E [2-3].")
    assert [c.cited for c in claims] == [(2,), (1, 3), (4,), (5, 2, 3)]
    assert claims[3].text == "D E."
    assert claims[0].text == "A rose 1.5%."
    assert parse_claims("X is big. Source [1]")[0].cited == (1,)


def test_parse_claims_handles_bullets_and_other_bracket_shapes():
    claims = parse_claims("- First point (passage 2)\n- Second point 【1】")
    assert [c.cited for c in claims] == [(2,), (1,)]
    assert claims[0].text == "First point"


def test_strip_citations():
    assert strip_citations("It is 5 [1]. Really [2, 3].") == "It is 5. Really."


def test_render_numbers_citations_by_first_appearance_with_document_offsets():
    invest, people = make_hit("invest.txt"), make_hit("people.txt")
    s_i = invest.chunk.text.index("Microsoft channelled")
    e_i = invest.chunk.text.index("crisis.") + len("crisis.")
    s_p = people.chunk.text.index("Satya")
    text, citations = render([("Nadella leads Microsoft.", [(people, (s_p, len(people.chunk.text)))]),
                              ("It put $650 million into Inflection", [(invest, (s_i, e_i))]),
                              ("Again Nadella.", [(people, (s_p, len(people.chunk.text)))])])
    assert text == "Nadella leads Microsoft [1]. It put $650 million into Inflection [2]. Again Nadella [1]."
    assert [c.source for c in citations] == ["people.txt", "invest.txt"]
    assert DOCS["invest.txt"][citations[1].start : citations[1].end] == citations[1].quote
    assert citations[1].quote.endswith("crisis.")


def test_markers_inside_parentheses_leave_no_empty_brackets():
    claims = parse_claims("Phi-3 (Source [2]). It is $1.8 trillion (Sources [1], [3]).")
    assert [c.text for c in claims] == ["Phi-3.", "It is $1.8 trillion."]
    assert [c.cited for c in claims] == [(2,), (1, 3)]
    assert strip_citations("Call f() first [1].") == "Call f() first."
