"""HTML of answers and sources: per-answer citation links, highlighting, windows, escaping, refusals."""

from __future__ import annotations

import pytest
from fakes_ui import CHUNK_A, DOC_A, DOCS, HITS, QUOTE

from index.records import Chunk, Hit
from rag.records import Citation
from ui import render

pytestmark = pytest.mark.unit


def test_linkify_only_known_numbers_and_per_answer_anchors():
    out = render.linkify_citations("A [1], B [2] and [7].", [1, 2], "m7")
    assert out.count('class="rag-cite"') == 2 and "[7]" in out and 'href="#rag-src-m7-2"' in out
    assert 'data-msg="m7"' in out
    assert render.plain_text(out) == "A [1], B [2] and [7]."


def test_plain_text_drops_notes_and_unescapes():
    assert render.plain_text("x &amp; y<br>z" + render.note("UI only")) == "x & y\nz"


def test_citation_card_highlights_quote_in_a_window_and_full_document_on_demand():
    at = DOC_A.text.index(QUOTE)
    cit = Citation(1, DOC_A.source, CHUNK_A.id, at, at + len(QUOTE), QUOTE)
    card = render.citation_card(cit, DOCS.get, msg_id="ab")
    assert 'id="rag-src-ab-1"' in card and "Microsoft invests" in card and "000_invest.txt" in card
    assert card.count(f"<mark>{QUOTE}</mark>") == 1  # the window; the full document is fetched on demand
    assert "Intro line." in card and "End." in card
    assert f'data-source="{DOC_A.source}" data-start="{at}" data-end="{at + len(QUOTE)}"' in card


def test_card_of_a_huge_document_carries_a_window_not_the_document():
    from index.records import Document

    big = Document(id="c" * 16, source="big.txt", title="Big", text="x" * 500_000 + QUOTE + "y" * 500_000)
    at = big.text.index(QUOTE)
    card = render.citation_card(
        Citation(1, big.source, "c", at, at + len(QUOTE), QUOTE), {"big.txt": big}.get
    )
    assert len(card) < 3000 and f"<mark>{QUOTE}</mark>" in card
    chunk = Chunk(
        id="c1", doc_id=big.id, source="big.txt", title="Big", text="z" * 100_000, start=0, end=100_000
    )
    assert len(render.hit_card(Hit(chunk, 1.0, 1, {}), None, {"big.txt": big}.get)) < 3000


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
    panel = render.answer_panel([cit], HITS, DOCS.get, "q1")
    assert panel.index('id="rag-src-q1-1"') < panel.index("1 more retrieved passages")
    assert 'data-msg="q1"' in panel and "Back to the chat" in panel


def test_refused_panel_shows_closest_passages():
    assert "Closest passages" in render.refused_panel(HITS, DOCS.get)
    assert "Nothing in the documents" in render.refused_panel((), DOCS.get)
