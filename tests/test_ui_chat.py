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
    assert 'href="#rag-src-m-1"' in text  # [1] links to the sources panel
    assert (
        'id="rag-src-m-1"' in final.sources_html
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


def _answer_all(conv, handler):
    while (ex := conv.take_next()) is not None:
        list(handler.run(ex, conv.history_before(ex, 6)))


def test_queue_answers_in_order_with_positions_and_history():
    from ui.conversation import Conversation

    fake = FakePipeline()
    conv, h = Conversation(), ChatHandler(fake)
    for q in ("How much one?", "How much two?", "How much three?"):
        conv.add(q)
    assert conv.claim_worker() and not conv.claim_worker()  # one worker per conversation
    shown = [m["content"] for m in conv.messages() if m["role"] == "assistant"]
    assert ["number 1" in shown[0], "number 2" in shown[1], "number 3" in shown[2]] == [True] * 3
    _answer_all(conv, h)
    assert [c["question"] for c in fake.calls] == ["How much one?", "How much two?", "How much three?"]
    assert fake.calls[2]["history"][-1] == Turn("assistant", "Microsoft invested $650 million [1].")
    assert conv.claim_worker()  # released when the queue ran empty


def test_draft_is_marked_and_replaced_in_place_by_the_final_answer():
    from ui.conversation import Conversation

    conv, h = Conversation(), ChatHandler(FakePipeline())
    ex = conv.add("How much?")
    conv.take_next()
    seen = []
    for _ in h.run(ex, []):
        seen.append(ex.html)
    drafts = [s for s in seen if "rag-draft" in s]
    assert drafts and all("checking sources" in d for d in drafts)
    assert "rag-draft" not in seen[-1] and "rag-done" in seen[-1] and "[1] Microsoft invests" in seen[-1]
    assert ex.status == "done" and ex.record["citations"][0]["n"] == 1 and ex.answer.endswith("[1].")


def test_stop_closes_the_pipeline_stream_at_the_next_step():
    from ui.conversation import Conversation

    fake = FakePipeline()
    conv, h = Conversation(), ChatHandler(fake)
    ex = conv.add("How much?")
    conv.take_next()
    steps = h.run(ex, [])
    for _ in steps:
        if "rag-draft" in ex.html:
            conv.stop("<span>Stopped.</span>")
    assert ex.status == "stopped" and ex.html == "<span>Stopped.</span>" and ex.record is None
    assert fake.active == 0  # the pipeline stream was closed (its finally ran)
    # ...and the model was told at once, through the flag it checks between prompt batches
    assert fake.calls[0]["cancelled"] is ex.cancelled and ex.cancelled.is_set()


def test_clear_cancels_the_running_answer_and_the_flag_is_not_stored():
    from ui.conversation import Conversation

    conv, h = Conversation(), ChatHandler(FakePipeline())
    conv.add("How much?")
    _answer_all(conv, h)
    assert "cancelled" not in conv.dump()["exchanges"][0]
    ex = conv.add("And then?")
    conv.take_next()
    conv.clear()
    assert ex.cancelled.is_set()


def test_conversation_round_trips_through_storage_and_distrusts_it():
    from ui.conversation import Conversation

    conv, h = Conversation(), ChatHandler(FakePipeline())
    conv.add("How much?")
    _answer_all(conv, h)
    data = conv.dump()
    data["exchanges"][0]["html"] += '<img src="http://127.0.0.1:9/p.png"><script>x()</script>'
    data["exchanges"].append({"question": 5})
    back = Conversation.load(data)
    assert back.id == conv.id and len(back.exchanges) == 1 and back.exchanges[0].status == "done"
    assert "<img" not in back.exchanges[0].html and "<script" not in back.exchanges[0].html
    assert back.history_before(back.add("next"), 6)[0] == Turn("user", "How much?")


def _slow_fake(timeout: float) -> FakePipeline:
    from rag.config import Config

    cfg = Config.from_env({}, max_question_chars=200, generation_timeout=timeout, backend="extractive")
    return FakePipeline(config=cfg, token_delay=0.3)  # "slowly": 3 s per token


def test_a_chat_answer_past_the_total_deadline_ends_with_a_clear_message():
    """RAG_GENERATION_TIMEOUT holds on the chat as on the API: at the deadline the pipeline is told to stop
    (its cancel flag is set even while it is silent) and the bubble says why."""
    fake = _slow_fake(1.0)
    ups = run(ChatHandler(fake), "Tell me slowly how much?")
    final = ups[-1].messages[-1]["content"]
    assert final.startswith(ERROR_PREFIX) and "RAG_GENERATION_TIMEOUT" in final
    assert fake.calls[0]["cancelled"].is_set() and fake.active == 0


def test_an_exchange_past_the_total_deadline_fails_with_the_reason():
    from ui.conversation import Conversation

    fake = _slow_fake(1.0)
    conv, h = Conversation(), ChatHandler(fake)
    ex = conv.add("Tell me slowly how much?")
    conv.take_next()
    list(h.run(ex, []))
    assert ex.status == "error" and "RAG_GENERATION_TIMEOUT" in ex.html and ex.record is None


def test_stop_while_waiting_for_a_slot_gives_the_place_back():
    """A question queued behind a busy slot is stopped at once, without waiting for the slot."""
    from ui.conversation import Conversation

    fake = FakePipeline()
    gate = GenerationGate(1, cpu_limit=1)
    lane_ticket = gate.ticket(fake.config.backend)
    lane_ticket.acquire()  # another answer holds the only slot of this lane
    conv, h = Conversation(), ChatHandler(fake, gate)
    ex = conv.add("How much?")
    conv.take_next()
    done = threading.Event()

    def worker() -> None:
        for _ in h.run(ex, []):
            pass
        done.set()

    threading.Thread(target=worker, daemon=True).start()
    deadline = time.monotonic() + 10
    while "waiting for a free slot" not in ex.html and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "waiting for a free slot" in ex.html
    conv.stop("<span>Stopped.</span>")
    assert done.wait(5), "the stopped question kept waiting for the slot"
    assert ex.status == "stopped" and gate.stats()["waiting"] == 0
    lane_ticket.release()
