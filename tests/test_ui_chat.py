"""The chat handler with a scripted pipeline: streaming updates, final replacement, errors, history."""

from __future__ import annotations

import threading
import time

import pytest
from fakes_ui import FakePipeline

from rag.records import Turn
from ui.chat import CURSOR, ERROR_PREFIX, GENERIC_ERROR, ChatHandler, history_to_turns, message_text
from ui.gate import GenerationGate

pytestmark = pytest.mark.unit


def run(handler: ChatHandler, message: str, history=None):
    return list(handler.respond(message, history or []))


def test_sources_first_then_tokens_then_verified_answer():
    ups = run(ChatHandler(FakePipeline()), "How much did Microsoft put into Inflection?")
    assert ups[0].messages[-1]["content"].startswith("_Searching")
    # second update: sources panel, before any token
    assert ups[1].sources_html and "Retrieved passages" in ups[1].sources_html
    assert "000_invest.txt" in ups[1].sources_html
    tokens = [u for u in ups[2:-1]]
    assert tokens and all(u.sources_html is None for u in tokens)  # tokens do not resend the panel
    drafts = [u.messages[-1]["content"] for u in tokens]
    assert drafts[0] == "Microsoft " + CURSOR
    assert all(len(a) <= len(b) for a, b in zip(drafts, drafts[1:], strict=False))  # grows
    final = ups[-1]
    assert final.done and final.record is not None
    text = final.messages[-1]["content"]
    assert CURSOR not in text
    assert 'href="#rag-src-1"' in text  # [1] links to the sources panel
    assert (
        'id="rag-src-1"' in final.sources_html
        and "<mark>Microsoft invested $650 million in Inflection.</mark>" in (final.sources_html)
    )
    assert "Read it in the full document" in final.sources_html
    assert final.record["citations"][0]["n"] == 1
    assert final.messages[0] == {"role": "user", "content": "How much did Microsoft put into Inflection?"}


def test_each_update_is_a_snapshot():
    ups = run(ChatHandler(FakePipeline()), "How much?")
    assert ups[2].messages[-1]["content"] != ups[-1].messages[-1]["content"]


def test_refusal_says_so_and_shows_closest_passages():
    final = run(ChatHandler(FakePipeline()), "please refuse this")[-1]
    assert "can't answer" in final.messages[-1]["content"]
    assert "closest passages" in final.messages[-1]["content"]
    assert history_to_turns(final.messages, 6)[-1].content == "I can't answer that from the documents."
    assert "Closest passages" in final.sources_html and "001_cloud.txt" in final.sources_html


@pytest.mark.parametrize(
    "question, expected",
    [
        ("", "Please type a question first."),
        ("   ", "Please type a question first."),
        ("x" * 201, "the limit is 200"),
        ("backend-down please", "backend is unreachable"),
    ],
)
def test_errors_are_friendly_messages(question, expected):
    ups = run(ChatHandler(FakePipeline()), question)
    final = ups[-1]
    assert final.done and final.record is None
    assert final.messages[-1]["content"].startswith(ERROR_PREFIX)
    assert expected in final.messages[-1]["content"]
    assert "Traceback" not in final.messages[-1]["content"]


def test_unexpected_exception_is_logged_and_generic(caplog):
    final = run(ChatHandler(FakePipeline()), "boom")[-1]
    assert final.messages[-1]["content"] == ERROR_PREFIX + GENERIC_ERROR
    assert "secret internal detail" not in final.messages[-1]["content"]
    assert any("chat answer failed" in r.message for r in caplog.records)


def test_follow_up_passes_history_without_markup_or_errors():
    fake = FakePipeline()
    h = ChatHandler(fake)
    first = run(h, "How much did Microsoft invest?")[-1].messages
    broken = run(h, "boom", first)[-1].messages
    run(h, "And who leads it?", broken)
    hist = fake.calls[-1]["history"]
    assert hist == [
        Turn("user", "How much did Microsoft invest?"),
        Turn("assistant", "Microsoft invested $650 million [1]."),
        Turn("user", "boom"),
    ]


def test_history_accepts_gradio_normalized_content_and_caps_turns():
    hist = [
        {"role": "user", "content": [{"type": "text", "text": "q1"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "a1"}]},
        {"role": "assistant", "content": "_Searching the documents…_"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
    ]
    assert history_to_turns(hist, 1) == [Turn("user", "q2"), Turn("assistant", "a2")]
    assert history_to_turns(hist, 6)[0] == Turn("user", "q1")
    assert message_text([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "a\nb"


def test_queued_users_see_sources_while_waiting():
    fake = FakePipeline(token_delay=0.05)
    gate = GenerationGate(1)
    h = ChatHandler(fake, gate)
    seen: dict[str, list] = {}

    def user(name: str) -> None:
        seen[name] = [(time.perf_counter(), u) for u in h.respond("How much?", [])]

    threads = [threading.Thread(target=user, args=(f"u{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert fake.max_active == 1  # one generation at a time
    assert all(ups[-1][1].record is not None for ups in seen.values())  # all answered
    waited = [
        u
        for ups in seen.values()
        for _, u in ups
        if "waiting for a free slot" in str(u.messages[-1]["content"])
    ]
    assert waited  # someone was told they are queued, with sources already shown
    assert all(w.sources_html for w in waited)
