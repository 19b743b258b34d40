"""HTML of answers and sources: citation links, highlighting, escaping, refusals."""

from __future__ import annotations

import pytest
from fakes_ui import CHUNK_A, DOC_A, DOCS, HITS, QUOTE

from rag.records import Citation
from ui import render

pytestmark = pytest.mark.unit


def test_linkify_only_known_numbers():
    out = render.linkify_citations("A [1], B [2] and [7].", [1, 2])
    assert out.count('class="rag-cite"') == 2 and "[7]" in out and 'href="#rag-src-2"' in out
    assert render.plain_text(out) == "A [1], B [2] and [7]."


def test_plain_text_drops_notes_and_unescapes():
    assert render.plain_text("x &amp; y" + render.note("UI only")) == "x & y"


def test_citation_card_highlights_quote_in_context_and_full_document():
    at = DOC_A.text.index(QUOTE)
    card = render.citation_card(Citation(1, DOC_A.source, CHUNK_A.id, at, at + len(QUOTE), QUOTE), DOCS.get)
    assert 'id="rag-src-1"' in card and "Microsoft invests" in card and "000_invest.txt" in card
    assert card.count(f"<mark>{QUOTE.replace('$', '$')}</mark>") == 2  # excerpt + full document
    assert "Intro line." in card and "End." in card


def test_citation_with_wrong_offsets_is_found_by_text():
    card = render.citation_card(Citation(1, DOC_A.source, CHUNK_A.id, 0, 5, QUOTE), DOCS.get)
    assert f"<mark>{QUOTE}</mark>" in card


def test_citation_without_document_falls_back_to_chunk():
    card = render.citation_card(Citation(1, "gone.txt", CHUNK_A.id, 0, 0, QUOTE), lambda s: None, HITS)
    assert f"<mark>{QUOTE}</mark>" in card and "Read it in the full document" not in card


def test_document_text_is_escaped():
    panel = render.retrieved_panel(HITS, DOCS.get)
    assert "<script>" not in panel and "&lt;script&gt;" in panel


def test_answer_panel_lists_uncited_passages_folded():
    at = DOC_A.text.index(QUOTE)
    cit = Citation(1, DOC_A.source, CHUNK_A.id, at, at + len(QUOTE), QUOTE)
    panel = render.answer_panel([cit], HITS, DOCS.get)
    assert panel.index('id="rag-src-1"') < panel.index("1 more retrieved passages")


def test_refused_panel_shows_closest_passages():
    assert "Closest passages" in render.refused_panel(HITS, DOCS.get)
    assert "Nothing in the documents" in render.refused_panel((), DOCS.get)
