"""Conversations kept in the browser: the store, listing, removal and the Markdown export."""

from __future__ import annotations

import pytest
from fakes_ui import FakePipeline

from ui import history
from ui.chat import ChatHandler
from ui.conversation import Conversation, take_back_last

pytestmark = pytest.mark.unit


def answered(*questions: str) -> Conversation:
    conv, h = Conversation(), ChatHandler(FakePipeline())
    for q in questions:
        conv.add(q)
    while (ex := conv.take_next()) is not None:
        list(h.run(ex, conv.history_before(ex, 6)))
    return conv


def test_save_pick_remove_and_list_newest_first():
    a, b = answered("How much?"), answered("Which cloud?")
    store = history.save(history.save(history.empty_store(), a), b)
    assert [label for label, _ in history.choices(store)] == ["Which cloud?", "How much?"]
    assert history.current(store).id == b.id
    assert history.pick(store, a.id).exchanges[0].answer == "Microsoft invested $650 million [1]."
    store = history.remove(store, b.id)
    assert [i for _, i in history.choices(store)] == [a.id]
    assert history.save(store, Conversation())["items"] == store["items"]  # an empty one is not listed


def test_store_from_the_browser_is_distrusted():
    assert history.current({"current": "x", "items": "nonsense"}).exchanges == []
    assert history.choices({"items": [{"no": "id"}, 5]}) == []


def test_markdown_export_has_answers_and_sources():
    md = history.to_markdown(answered("How much?", "please refuse this"))
    assert md.startswith("# How much?")
    assert "**Question:** How much?" in md and "Microsoft invested $650 million [1]." in md
    assert "- [1] Microsoft invests (000_invest.txt): “Microsoft invested $650 million in Inflection.”" in md


def test_take_back_last_for_regenerate_and_edit():
    conv = answered("How much?", "Which cloud?")
    ex = take_back_last(conv)
    assert ex is not None and ex.question == "Which cloud?" and len(conv.exchanges) == 1
    conv.add("queued")
    assert take_back_last(conv) is None  # not while a question waits
