"""`/docs` and `/redoc` that work offline: their scripts come from the `fastapi-offline` PyPI package.

FastAPI's own pages load Swagger UI and ReDoc from a CDN (a blank page without internet); this replaces
them with the same pages pointing at `/docs-assets/` (the package's current Swagger UI, which reads
the OpenAPI 3.1 FastAPI writes, and ReDoc). Call `offline_docs(app)` before mounting the Gradio apps
at "/". Only the package's files are used, so the app stays a plain `FastAPI`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"


def assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def offline_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc from packaged assets (put first: the chat page is mounted at "/" later)."""
    gone = {p for p in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if p}
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) not in gone]
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} – API"

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
        )

    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    before = len(app.router.routes)
    app.add_api_route("/docs", docs, include_in_schema=False, methods=["GET"])
    app.add_api_route("/redoc", redoc, include_in_schema=False, methods=["GET"])
    app.mount(ASSETS, StaticFiles(directory=str(assets_dir())), name="docs-assets")
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[0:0] = added  # ahead of any catch-all mount
