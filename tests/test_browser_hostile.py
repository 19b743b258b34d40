"""Hostile documents in a real headless Chromium: no request leaves the page, no script runs.

A corpus of documents carrying script tags, event handlers, Markdown and HTML images, SVG, CSS, a
javascript: link, very long lines and right-to-left overrides is indexed for real (MiniLM, FAISS) and
served with the `extractive` backend, which copies document sentences into the answer, so the attacks
reach the answer, the sources panel, the full-document view and the embed view. A loopback "pixel"
server counts every request; the page must make none to it (nor to any other origin than ours).
"""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import pytest
from fakes_ui import ServerThread, chromium_browser, free_port

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
QUESTION = "What was the quarterly pixel budget of Contoso?"


def hostile_docs(pixel: str) -> dict[str, str]:
    attacks = (
        f"![tracker]({pixel}/md.png) "
        f'<img src="{pixel}/img.png" onerror="window.__pwned=1"> '
        f"<script>window.__pwned=1; fetch('{pixel}/script')</script> "
        f'<svg onload="window.__pwned=1"><image href="{pixel}/svg.png"/></svg> '
        f"<style>body{{background:url({pixel}/css.png)}}</style> "
        '<a href="javascript:window.__pwned=1">click me</a> '
        f'<iframe src="{pixel}/frame"></iframe> '
        f'<div style="background:url({pixel}/style.png)" onmouseover="window.__pwned=1">hover</div> '
    )
    return {
        "contoso.md": (
            "# Contoso pixel report\n\n"
            "The quarterly pixel budget of Contoso was 42 million dollars "
            f"{attacks}according to the report.\n\n"
            "Contoso reviews the pixel budget every quarter. "
            f"\u202eThis line is reversed by an override.\u202c {attacks}\n\n"
            + "A" * 20_000
            + "\n\nThe end of the Contoso report mentions the pixel budget again.\n"
        ),
        "fabrikam.txt": (
            "Fabrikam notes\n\nFabrikam has no pixel budget. "
            f"<body onload=\"window.__pwned=1\">{attacks}</body> Its budget is for paper.\n"
        ),
    }


class Pixel(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        Pixel.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def pixel():
    port = free_port()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Pixel)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    yield from chromium_browser()


@pytest.fixture(scope="module")
def served(tmp_path_factory, pixel):
    from index.builder import build_index
    from index.embedder import load_embedder
    from rag.config import Config
    from rag.pipeline import build_pipeline
    from ui.server import build_server

    corpus = tmp_path_factory.mktemp("hostile")
    for name, text in hostile_docs(pixel).items():
        (corpus / name).write_text(text, encoding="utf-8")
    index_dir = tmp_path_factory.mktemp("hostile-index")
    build_index([corpus], index_dir, load_embedder(""), progress=False)
    config = Config.from_env(
        {},
        index_dir=str(index_dir),
        corpus=str(corpus),
        backend="extractive",
        feedback_path=str(tmp_path_factory.mktemp("fb") / "feedback.jsonl"),
    )
    with ServerThread(build_server(build_pipeline(config), env={})) as url:
        yield url


def watch(page, url: str) -> list[str]:
    """Requests the page makes to anywhere but our server."""
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((url, "data:", "blob:")) else outside.append(r.url))
    return outside


def ask_and_open_everything(page_or_frame) -> None:
    box = page_or_frame.locator("#rag-input textarea")
    box.wait_for(timeout=30_000)
    box.fill(QUESTION)
    box.press("Enter")
    page_or_frame.locator("#rag-chat .rag-done, #rag-chat .rag-error").first.wait_for(
        state="attached", timeout=60_000
    )
    answer = page_or_frame.locator("#rag-chat .bot-row").last.inner_text()
    assert "42 million" in answer, answer
    page_or_frame.locator("#rag-chat a.rag-cite").first.click()
    panel = page_or_frame.locator("#rag-sources")
    for fold in panel.locator("details.rag-others > summary").all():
        fold.click()
    for full in panel.locator("details.rag-full > summary").all():
        full.click()
    panel.locator(".rag-doc mark").first.wait_for(timeout=10_000)
    for hover in panel.get_by_text("hover").all()[:3]:
        hover.hover()
    for link in page_or_frame.get_by_text("click me").all()[:3]:
        link.click()


def assert_clean(page, outside: list[str], where: str) -> None:
    time.sleep(0.5)  # let any late image or script request arrive
    assert Pixel.hits == [], f"{where}: the page fetched {Pixel.hits}"
    assert outside == [], f"{where}: requests left the page: {outside}"
    pwned = [f.evaluate("() => window.__pwned || null") for f in page.frames]
    assert not any(pwned), f"{where}: a document's script ran"


def test_hostile_documents_in_chat_sources_and_full_document(browser, served):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside = watch(page, served)
    page.goto(served + "/")
    ask_and_open_everything(page)
    text = page.locator("#rag-sources").inner_text()
    assert "<script>" in text and "![tracker]" in text  # shown as text
    assert "\u202e" not in page.locator("#rag-chat").inner_text() + text
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1282, f"a very long line widens the page to {width}px"
    page.screenshot(path=str(ARTIFACTS / "browser-hostile-desktop.png"))
    assert_clean(page, outside, "chat page")
    page.close()


def test_hostile_documents_in_the_embed_at_320px(browser, served):
    page = browser.new_page(viewport={"width": 320, "height": 700}, is_mobile=True, has_touch=True)
    outside = watch(page, served)
    page.goto(served + "/embed/")
    ask_and_open_everything(page)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 322, f"the embed scrolls sideways at 320px ({width}px)"
    page.screenshot(path=str(ARTIFACTS / "browser-hostile-embed-320.png"))
    assert_clean(page, outside, "embed view")
    page.close()
