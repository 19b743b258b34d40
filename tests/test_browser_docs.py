"""`/docs` works offline: Swagger UI from the packaged assets, no request leaves the page."""

from __future__ import annotations

import httpx
import pytest
from fakes_ui import FakePipeline, ServerThread, chromium_browser

from ui.server import build_server

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def browser():
    yield from chromium_browser()


def test_docs_render_offline(browser):
    with ServerThread(build_server(FakePipeline(), env={})) as url:
        html = httpx.get(url + "/docs").text
        assert "/docs-assets/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
        assert httpx.get(url + "/docs-assets/swagger-ui-bundle.js").status_code == 200
        assert "/docs-assets/redoc.standalone.js" in httpx.get(url + "/redoc").text
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        outside: list[str] = []
        page.on("request", lambda r: None if r.url.startswith((url, "data:")) else outside.append(r.url))
        page.goto(url + "/docs")
        page.locator(".swagger-ui .title", has_text="rag-chat").wait_for(timeout=30_000)
        assert page.locator(".opblock-summary-path", has_text="/api/ask").first.is_visible()
        assert outside == [], outside  # Swagger UI: nothing from outside
        page.goto(url + "/redoc")
        page.get_by_text("Answer a question with cited passages").first.wait_for(
            state="attached", timeout=30_000
        )
        # ReDoc renders offline; only its "by Redocly" sidebar logo comes from its CDN (missing offline)
        assert [u for u in outside if not u.startswith("blob:")] in (
            [],
            ["https://cdn.redoc.ly/redoc/logo-mini.svg"],
        )
