"""The chat page's controls in a real headless Chromium, against the scripted pipeline (fast, exact):
questions queued in order, Stop / Esc / Clear, an old answer's [n], the draft, Copy, votes.

The fake writes one token every TOKEN_DELAY seconds, so "while streaming" is a real window of time.
First-token and final-answer times seen in the browser are printed (see docs/chat.md).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fakes_ui import FakePipeline, ServerThread, chromium_browser

from rag.config import Config
from ui.feedback import read_feedback

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
TOKEN_DELAY = 0.4  # four tokens: an answer streams for about 1.6 s


@pytest.fixture(scope="module")
def browser():
    yield from chromium_browser()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    fb = tmp_path_factory.mktemp("fb") / "feedback.jsonl"
    fake = FakePipeline(config=Config.from_env({}, feedback_path=str(fb)), token_delay=TOKEN_DELAY)
    from ui.server import build_server

    with ServerThread(build_server(fake, env={})) as url:
        yield url, fake, fb


@pytest.fixture
def page(browser, served):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.grant_permissions(["clipboard-read", "clipboard-write"])
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(served[0] + "/")
    pg.locator("#rag-input textarea").wait_for(timeout=30_000)
    yield pg
    ctx.close()
    assert not errors, errors


def send(page, question: str) -> None:
    box = page.locator("#rag-input textarea")
    box.fill(question)
    box.press("Enter")


def wait_done(page, count: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while page.locator("#rag-chat .rag-done").count() < count and time.time() < deadline:
        time.sleep(0.05)
    assert page.locator("#rag-chat .rag-done").count() >= count, page.locator("#rag-chat").inner_text()


def bot(page):
    return page.locator("#rag-chat .bot-row")


def test_three_rapid_questions_all_shown_at_once_and_answered_in_order(page, served):
    _, fake, _ = served
    before = len(fake.calls)
    questions = ["How much first?", "How much second?", "How much third?"]
    for q in questions:
        send(page, q)
        time.sleep(0.7)
    text = page.locator("#rag-chat").inner_text()
    assert all(q in text for q in questions), text  # all visible while the first is answered
    assert "Queued: number" in text
    page.screenshot(path=str(ARTIFACTS / "browser-queue.png"))
    wait_done(page, 3)
    assert [c["question"] for c in fake.calls[before:]] == questions
    assert page.locator("#rag-chat .user-row").count() == 3 and bot(page).count() == 3
    assert "Queued" not in page.locator("#rag-chat").inner_text()


def test_stop_ends_the_answer_at_once_and_esc_too(page, served):
    _, fake, _ = served
    send(page, "How much stop?")
    page.locator("#rag-chat .rag-draft").first.wait_for(timeout=10_000)
    page.locator("#rag-input button", has_text="Stop").click()
    page.get_by_text("Stopped.").wait_for(timeout=2_000)
    time.sleep(2 * TOKEN_DELAY)
    assert fake.active == 0  # the pipeline stream was closed: no generation goes on
    assert page.locator("#rag-chat .rag-done").count() == 0
    assert page.locator("#rag-input button", has_text="Ask").is_visible()
    send(page, "How much esc?")
    page.locator("#rag-chat .rag-draft").first.wait_for(timeout=10_000)
    page.keyboard.press("Escape")
    page.get_by_text("Stopped.").nth(1).wait_for(timeout=2_000)
    # the next question is answered normally
    send(page, "How much after?")
    wait_done(page, 1)


def test_clear_while_streaming_cancels_and_stays_cleared(page, served):
    _, fake, _ = served
    send(page, "How much clear?")
    send(page, "How much queued behind?")
    page.locator("#rag-chat .rag-draft").first.wait_for(timeout=10_000)
    page.locator("#rag-chat button[aria-label='Clear']").click()
    time.sleep(6 * TOKEN_DELAY)  # longer than the answer would have taken
    assert page.locator("#rag-chat .message-row").count() == 0, page.locator("#rag-chat").inner_text()
    assert fake.active == 0


def test_closing_the_tab_mid_answer_cancels_it(browser, served):
    url, fake, _ = served
    ctx = browser.new_context()
    pg = ctx.new_page()
    pg.goto(url + "/")
    pg.locator("#rag-input textarea").wait_for(timeout=30_000)
    send(pg, "How much, answered slowly?")
    pg.locator("#rag-chat .rag-draft").first.wait_for(timeout=10_000)  # streaming: ~16 s left
    call = next(c for c in reversed(fake.calls) if c["question"] == "How much, answered slowly?")
    ctx.close()  # no Stop: the tab is simply gone
    deadline = time.time() + 8
    while not call["cancelled"].is_set() and time.time() < deadline:
        time.sleep(0.1)
    assert call["cancelled"].is_set(), "the answer went on after its tab was closed"
    print(f"cancelled {8 - (deadline - time.time()):.1f} s after the tab closed")


def test_old_citation_shows_its_own_passage_copy_and_vote(page, served):
    _, _, fb = served
    send(page, "How much did Microsoft invest?")
    wait_done(page, 1)
    send(page, "Which cloud has the rights?")
    wait_done(page, 2)
    panel = page.locator("#rag-sources")
    assert "Azure has exclusive rights" in panel.locator("mark").first.inner_text()
    bot(page).nth(0).locator("a.rag-cite").click()  # the OLD answer's [1]
    page.wait_for_function(
        "() => [...document.querySelectorAll('#rag-sources mark')].some(m => m.innerText.includes('650'))",
        timeout=5_000,
    )
    page.screenshot(path=str(ARTIFACTS / "browser-old-citation.png"))
    bot(page).nth(1).locator("a.rag-cite").click()  # and back to the new one
    page.wait_for_function(
        "() => [...document.querySelectorAll('#rag-sources mark')].some(m => m.innerText.includes('Azure'))",
        timeout=5_000,
    )
    # Copy: plain text and the source list, no markup
    bot(page).nth(0).locator("a.rag-copy").click()
    copied = page.evaluate("() => navigator.clipboard.readText().catch(() => window.__ragCopied)")
    assert copied.startswith("Microsoft invested $650 million [1].") and "Sources:" in copied, copied
    assert "<" not in copied and "000_invest.txt" in copied
    label = bot(page).nth(0).locator("[aria-label^='bot']").first.get_attribute("aria-label") or ""
    assert "<" not in label and "650" in label, label
    # a vote on a final answer: confirmed in the page, recorded with the conversation id
    bot(page).nth(1).locator("a.rag-vote").first.click()
    bot(page).nth(1).get_by_text("was recorded").wait_for(timeout=5_000)
    row = read_feedback(fb)[-1]
    assert row["vote"] == "up" and row["answer"] == "Azure has the exclusive rights [1]."
    assert row["citations"][0]["source"] == "001_cloud.txt" and row["conversation_id"]


def test_draft_is_marked_and_timings(page):
    t0 = time.perf_counter()
    send(page, "How much draft?")
    page.locator("#rag-chat .rag-draft").first.wait_for(timeout=10_000)
    t_first = time.perf_counter() - t0
    draft = bot(page).last.inner_text()
    assert "checking sources" in draft.lower()
    assert bot(page).last.locator(".rag-vote").count() == 0  # no votes on a draft
    wait_done(page, 1)
    t_final = time.perf_counter() - t0
    assert bot(page).last.locator(".rag-draft").count() == 0
    print(
        f"\nbrowser (fake, {TOKEN_DELAY}s/token): first token {t_first * 1000:.0f} ms, "
        f"final {t_final * 1000:.0f} ms"
    )


def test_reload_keeps_the_conversation_new_and_back_regenerate(page, served):
    _, fake, _ = served
    send(page, "How much kept?")
    wait_done(page, 1)
    time.sleep(0.5)  # the store is written with the last update
    page.reload()
    page.locator("#rag-chat .rag-done").first.wait_for(state="attached", timeout=30_000)
    assert "How much kept?" in page.locator("#rag-chat").inner_text()
    bot(page).first.locator("a.rag-cite").click()  # a restored answer still shows its own passage
    page.locator("#rag-sources .rag-cited mark").first.wait_for(timeout=5_000)
    # regenerate asks the last question again
    before = len(fake.calls)
    page.get_by_role("button", name="Regenerate").click()
    deadline = time.time() + 20
    while len(fake.calls) == before and time.time() < deadline:
        time.sleep(0.05)
    wait_done(page, 1)
    assert fake.calls[-1]["question"] == "How much kept?" and bot(page).count() == 1
    # a new conversation, then back to the earlier one from the list
    page.get_by_text("Conversations").first.click()
    page.locator("#rag-conv-new").click()
    page.wait_for_function("() => !document.querySelector('#rag-chat .bot-row')", timeout=5_000)
    page.locator("#rag-conv-list input").click()
    page.get_by_role("option", name="How much kept?").click()
    page.locator("#rag-chat .rag-done").first.wait_for(state="attached", timeout=5_000)
    page.locator("#rag-conv-export").click()
    link = page.locator("#rag-conv-file a[download]").first
    link.wait_for(timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "browser-conversations.png"), full_page=True)
    with page.expect_download() as dl:
        link.click()
    md = Path(dl.value.path()).read_text(encoding="utf-8")
    assert "**Question:** How much kept?" in md and "- [1] Microsoft invests (000_invest.txt)" in md
