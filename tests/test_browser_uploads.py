"""Upload a document in the page, see it indexed, ask about it: the running server answers from it.

Real Chromium, real server, real index (the keyword embedder keeps it quick), extractive answers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes_ui import ServerThread, chromium_browser
from test_ui_uploads import make_pipeline

from ui.server import build_server

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="module")
def browser():
    yield from chromium_browser()


def test_upload_then_ask(browser, tmp_path):
    doc = tmp_path / "zebra.md"
    doc.write_text("# Zebra report\n\nThe zebra budget is 77 crowns for the stripes.\n", encoding="utf-8")
    with ServerThread(build_server(make_pipeline(tmp_path), env={})) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url + "/")
        page.get_by_text("Documents", exact=True).first.click()
        page.locator("#rag-doc-upload input[type=file]").set_input_files(str(doc))
        page.locator("#rag-doc-status", has_text="Done:").wait_for(timeout=60_000)
        assert "2 documents" in page.locator("#rag-doc-status").inner_text()
        page.screenshot(path=str(ARTIFACTS / "browser-upload.png"), full_page=True)
        box = page.locator("#rag-input textarea")
        box.fill("What is the zebra budget for the stripes?")
        box.press("Enter")
        page.locator("#rag-chat .rag-done").first.wait_for(state="attached", timeout=60_000)
        answer = page.locator("#rag-chat .bot-row").last.inner_text()
        assert "77 crowns" in answer and "zebra.md" in answer, answer
