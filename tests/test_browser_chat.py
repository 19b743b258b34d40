"""End to end in a real headless Chromium (Debian's, driven by Playwright): the chat page and the embed page.

The server is the real one (real index over seeds/, real pipeline, `extractive` backend so the answer is
deterministic and quick). Screenshots go to artifacts/ for a person to look at.
Skipped when /usr/bin/chromium is missing (`make browser` installs it).
"""

from __future__ import annotations

import functools
import http.server
import threading
import time
from pathlib import Path

import pytest
from fakes_ui import ServerThread, chromium_browser, free_port

from ui.feedback import read_feedback

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
QUESTION = "How much did Microsoft put into Inflection?"


@pytest.fixture(scope="module")
def browser():
    yield from chromium_browser()


@pytest.fixture(scope="module")
def server(real_config, static_site):
    from rag.pipeline import build_pipeline
    from ui.server import build_server

    # The embedding page is another origin: it must be allowed (the default is same origin only).
    config = real_config.replace(backend="extractive", allowed_origins=static_site)
    with ServerThread(build_server(build_pipeline(config), env={})) as url:
        yield url, config


@pytest.fixture(scope="module")
def static_site():
    """examples/ on its own loopback port: the embedding page is another origin, as a wiki would be."""
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(ROOT / "examples"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    httpd.shutdown()


def ask(page_or_frame, question: str) -> tuple[float, float]:
    """Type and press Enter; seconds until the first source shows and until the verified answer shows."""
    rows = page_or_frame.locator("#rag-chat .message-row")
    before = rows.count()
    box = page_or_frame.locator("#rag-input textarea")
    box.fill(question)
    t0 = time.perf_counter()
    box.press("Enter")
    # this question's passages: "being written" while streaming, or already the answer's sources
    page_or_frame.locator("#rag-sources .rag-status", has_text="being written").or_(
        page_or_frame.locator("#rag-sources .rag-src")
    ).first.wait_for(timeout=30_000)
    t_src = time.perf_counter() - t0
    deadline = time.time() + 120
    while rows.count() < before + 2 and time.time() < deadline:
        time.sleep(0.05)
    rows.last.locator(".rag-done").first.wait_for(state="attached", timeout=120_000)
    return t_src, time.perf_counter() - t0


def test_chat_page_desktop(browser, server):
    url, config = server
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    # example questions are offered on the empty chat
    page.get_by_text("Who leads Microsoft AI?").first.wait_for(timeout=30_000)
    t_src, t_answer = ask(page, QUESTION)
    answer = page.locator("#rag-chat .bot-row").last.inner_text()
    assert "650" in answer and "[1]" in answer, answer
    panel = page.locator("#rag-sources")
    src1 = panel.locator(".rag-cited[id$='-1']")
    assert src1.locator("mark").first.is_visible()
    assert "Inflection" in src1.locator("mark").first.inner_text()
    # [1] jumps to its source; the full document is fetched and opens on the passage
    page.locator("#rag-chat a.rag-cite").first.click()
    assert "rag-flash" in (src1.get_attribute("class") or "")
    src1.locator("details.rag-full summary").click()
    src1.locator(".rag-doc mark").wait_for(timeout=10_000)
    assert "Inflection" in src1.locator(".rag-doc mark").inner_text()
    # thumbs up is recorded with the answer and its citations
    page.locator("#rag-chat a.rag-vote").first.click()
    deadline = time.time() + 10
    while not read_feedback(config.feedback_path) and time.time() < deadline:
        time.sleep(0.1)
    rows = read_feedback(config.feedback_path)
    assert rows and rows[-1]["vote"] == "up" and rows[-1]["question"] == QUESTION and rows[-1]["citations"]
    page.screenshot(path=str(ARTIFACTS / "browser-chat-desktop.png"), full_page=True)
    # a follow-up uses the conversation, a declined question says so and shows the closest passages
    ask(page, "What is the capital of France?")
    assert "closest passages" in page.locator("#rag-chat .bot-row").last.inner_text().lower()
    assert panel.get_by_text("Closest passages").is_visible()
    page.screenshot(path=str(ARTIFACTS / "browser-chat-refusal.png"), full_page=True)
    assert not errors, errors
    print(f"\nbrowser: first source {t_src * 1000:.0f} ms, verified answer {t_answer * 1000:.0f} ms")


def test_chat_page_phone_width(browser, server):
    url, _ = server
    page = browser.new_page(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page.goto(url + "/")
    page.get_by_text("Who leads Microsoft AI?").first.wait_for(timeout=30_000)
    page.get_by_text("Who leads Microsoft AI?").first.click()  # an example question starts the chat
    page.locator("#rag-chat .rag-done").first.wait_for(state="attached", timeout=120_000)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 392, f"page scrolls sideways at phone width ({width}px)"
    assert page.locator("#rag-sources .rag-src").first.is_visible()
    chat = page.locator("#rag-chat").bounding_box()
    assert chat["width"] >= 370, f"the chat is {chat['width']:.0f} of 390 px wide"
    # [n] scrolls to the source; a link leads back to the chat
    page.locator("#rag-chat a.rag-cite").first.click()
    back = page.locator("#rag-sources a.rag-back")
    back.wait_for(state="visible", timeout=5_000)
    page.screenshot(path=str(ARTIFACTS / "browser-chat-phone.png"), full_page=True)
    back.click()
    page.wait_for_function("() => document.getElementById('rag-chat').getBoundingClientRect().top < 400")


def test_question_sent_while_answering_is_answered_next(browser, server):
    """A second question sent while the first is still being answered is queued and answered, not lost."""
    url, _ = server
    page = browser.new_page(viewport={"width": 1024, "height": 800})
    page.goto(url + "/")
    page.get_by_text("Who leads Microsoft AI?").first.wait_for(timeout=30_000)
    box = page.locator("#rag-input textarea")
    box.fill(QUESTION)
    box.press("Enter")
    chat = page.locator("#rag-chat")
    chat.get_by_text(QUESTION).first.wait_for(timeout=30_000)
    box.fill("And how much in G42?")  # the first answer may still be pending
    box.press("Enter")
    deadline = time.time() + 120
    while chat.locator(".rag-done").count() < 2 and time.time() < deadline:
        time.sleep(0.1)
    text = chat.inner_text()
    assert "And how much in G42?" in text and "650" in text and "1.5 billion" in text, text
    assert "type a question" not in text and box.input_value() == ""


def test_error_is_friendly(browser, server):
    url, config = server
    page = browser.new_page(viewport={"width": 1024, "height": 800})
    page.goto(url + "/")
    page.locator("#rag-input textarea").fill("x" * (config.max_question_chars + 10))
    page.locator("#rag-input textarea").press("Enter")
    msg = page.locator("#rag-chat .message-row").last
    page.get_by_text("Please shorten it").wait_for(timeout=30_000)
    assert "Traceback" not in msg.inner_text()


def test_embed_test_page(browser, server, static_site):
    url, _ = server
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(f"{static_site}/embed-test.html?server={url}")
    frame = page.frame_locator("rag-chat iframe")
    frame.locator("#rag-input textarea").wait_for(timeout=30_000)
    ask(frame, QUESTION)
    assert "650" in frame.locator("#rag-chat .bot-row").last.inner_text()
    assert frame.locator("#rag-sources .rag-cited mark").first.is_visible()
    assert frame.locator("#rag-header").count() == 0  # the embed view has no page chrome
    # The iframe starts at the element's min-height and takes the height the embed view reports, at most once
    # a second (later on a loaded machine): poll. Comparing with the height before asking raced with the
    # first report, which may already hold the chat's full height.
    start = float(page.locator("rag-chat").get_attribute("min-height") or 460)
    after, deadline = start, time.monotonic() + 20
    while after <= start and time.monotonic() < deadline:
        time.sleep(0.5)
        after = page.locator("rag-chat iframe").bounding_box()["height"]
    assert after > start, (start, after)  # auto-sized to the content
    page.screenshot(path=str(ARTIFACTS / "browser-embed-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    time.sleep(1.5)
    page.screenshot(path=str(ARTIFACTS / "browser-embed-phone.png"), full_page=True)
