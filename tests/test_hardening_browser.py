"""The Content-Security-Policy in real Chromium: the chat page, the embed view and /docs work under it,
with no violation reported (Gradio needs 'unsafe-inline' and 'unsafe-eval' scripts; see ui/server.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes_ui import FakePipeline, ServerThread

from rag.config import Config
from ui.server import build_server

pytestmark = [pytest.mark.browser, pytest.mark.integration]
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("no /usr/bin/chromium: run `make browser` for the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.mark.parametrize("path", ["/", "/embed/", "/docs"])
def test_pages_work_under_the_csp(browser, path):
    cfg = Config.from_env({}, rate_limit="", backend="extractive")
    with ServerThread(build_server(FakePipeline(config=cfg), env={})) as url:
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(url + path)
        if path == "/docs":
            page.locator(".opblock-summary-path").first.wait_for(timeout=30_000)  # operations listed
        else:
            box = page.locator("textarea").first
            box.wait_for(timeout=30_000)
            box.fill("How much?")
            box.press("Enter")
            page.get_by_text("650", exact=False).first.wait_for(timeout=30_000)
        page.close()
    assert problems == []
