"""One FastAPI app for everything: the HTTP API, the chat page at `/`, the embed view at `/embed`,
`/embed.js` (the `<rag-chat>` web component) and the OpenAPI description at `/docs`.

Operations, all read when the server is built:
- auth: `RAG_AUTH_TOKEN` (send `Authorization: Bearer <token>`, or open `/?token=<token>` once: a cookie
  keeps the browser signed in) and/or `RAG_BASIC_AUTH=user:pass` (the browser's own login prompt).
  `/api/health` and `/embed.js` stay open, so probes and embedding pages work without the secret.
- `Config.allowed_origins`: CORS for the API and `Content-Security-Policy: frame-ancestors` for embedding
  ("" = same origin only, the default; "*" = anyone, and then no frame-ancestors restriction is sent).
- a Content-Security-Policy on every reply (`CSP_BASE`), body/rate/sign-in limits (`ui.middleware`).
- one `GenerationGate` (lanes by backend, bounded queues; `ui.gate`) shared by chat and API.
Leaves out TLS (put a reverse proxy in front) and user accounts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ui.api import build_router
from ui.app import EMBED_CSS, EMBED_HEAD, PAGE_CSS, PAGE_HEAD, build_app, page_theme
from ui.chat import PipelineLike
from ui.docs_offline import offline_docs
from ui.gate import GenerationGate
from ui.limits import SharedCounters
from ui.middleware import Guard

STATIC = Path(__file__).parent / "static"


def parse_origins(value: str) -> list[str]:
    """Origins allowed besides our own; [] = same origin only, ['*'] = anyone.

    Example: parse_origins("https://a.example, https://b.example") -> ['https://a.example', 'https://b.example']
    """
    origins = [o.strip().rstrip("/") for o in (value or "").split(",") if o.strip()]
    return ["*"] if "*" in origins else origins


def frame_ancestors(origins: list[str]) -> str | None:
    """The CSP directive for who may frame the chat; None when anyone may."""
    return None if origins == ["*"] else " ".join(["frame-ancestors 'self'", *origins])


# Every page we serve (chat, embed view, docs) gets this policy: our own scripts, styles and images only,
# no remote images (tracking pixels in documents), no plugins, no <base> tricks, no posting elsewhere.
# Measured in Chromium against Gradio 6: its page does not start without 'unsafe-eval' (its front end
# evaluates a string as JavaScript at load) and 'unsafe-inline' scripts (inline bootstrap <script>s with
# the app config); 'unsafe-inline' styles are the theme's and components' style attributes. blob:/data:
# images are Gradio's own icons, never remote URLs. Remote hosts are allowed for nothing.
CSP_BASE = (
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
)


def gradio_upload_limit(cfg: Any) -> int:
    """Bytes Gradio's upload route takes per file: RAG_MAX_UPLOAD_BYTES, raised to RAG_UPLOAD_MAX_MB while the
    page's document uploads are on (otherwise the page refused documents the setting allows)."""
    limit = int(getattr(cfg, "max_upload_bytes", 10_000_000))
    if str(getattr(cfg, "uploads", "on")).strip().lower() != "off":
        limit = max(limit, int(getattr(cfg, "upload_max_mb", 20)) * 1024 * 1024)
    return limit


def content_security_policy(origins: list[str]) -> str:
    """Example: content_security_policy([]) ends with "frame-ancestors 'self'"."""
    fa = frame_ancestors(origins)
    return "; ".join([*CSP_BASE, *([fa] if fa else [])])


def embedding_note(origins: list[str]) -> str:
    """The start-up line that says who may embed the chat and how to change it."""
    if origins == ["*"]:
        return "Embedding: any site may frame the chat and call the API (RAG_ALLOWED_ORIGINS=*)."
    if origins:
        return f"Embedding: allowed from {', '.join(origins)} (RAG_ALLOWED_ORIGINS)."
    return (
        "Embedding: same origin only. To embed in a wiki, set RAG_ALLOWED_ORIGINS=https://wiki.example "
        "(or --allowed-origins)."
    )


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (an unparsable body, 404, 405) in the `{error, detail}` shape."""
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "") or HTTPStatus(status).phrase
    kind = "".join(w.capitalize() for w in HTTPStatus(status).phrase.split())
    if status < 400:  # not an error: keep Starlette's behaviour (redirects)
        return Response(status_code=status, headers=getattr(exc, "headers", None))
    return JSONResponse({"error": kind, "detail": str(detail)}, status, headers=getattr(exc, "headers", None))


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 in the documented `{error, detail}` shape, one line naming the field."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    parts = []
    for e in errors[:3]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    detail = "; ".join(parts) or "The request body is not valid."
    return JSONResponse({"error": "ValidationError", "detail": detail}, status_code=422)


def build_server(
    pipeline: PipelineLike,
    *,
    auth_token: str | None = None,
    basic_auth: str | None = None,
    env: Mapping[str, str] | None = None,
) -> FastAPI:
    """The whole server for `pipeline`. Secrets come from the arguments, else `RAG_AUTH_TOKEN` /
    `RAG_BASIC_AUTH` in `env` (default os.environ), read now, not at import.

    Example: uvicorn.run(build_server(build_pipeline(Config.from_env())), host="127.0.0.1", port=7860)
    """
    env = os.environ if env is None else env
    token = auth_token if auth_token is not None else env.get("RAG_AUTH_TOKEN", "")
    basic = basic_auth if basic_auth is not None else env.get("RAG_BASIC_AUTH", "")
    if basic and ":" not in basic:
        from rag.errors import ConfigError

        raise ConfigError("RAG_BASIC_AUTH must look like user:password.")
    cfg = pipeline.config
    origins = parse_origins(getattr(cfg, "allowed_origins", ""))
    gate = GenerationGate.from_config(cfg)

    app = FastAPI(
        title="rag-chat",
        description="Ask questions about the indexed documents; answers cite the passages they use.",
        version="0.1.0",
        docs_url=None,  # served by offline_docs below: the default page loads its scripts from a CDN
        redoc_url=None,
    )
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.include_router(build_router(pipeline, gate))
    offline_docs(app)  # /docs and /redoc from the fastapi-offline package's files, not a CDN

    @app.get("/embed.js", include_in_schema=False)
    def embed_js() -> FileResponse:
        return FileResponse(
            STATIC / "embed.js",
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=300"},
        )

    @app.get("/embed", include_in_schema=False)
    def embed_slash(request: Request) -> RedirectResponse:  # Gradio serves the mounted app at /embed/
        query = request.url.query
        return RedirectResponse("/embed/" + (f"?{query}" if query else ""))

    app.mount("/ui-static", StaticFiles(directory=STATIC), name="ui-static")
    gradio_upload = gradio_upload_limit(cfg)
    # The embed view first: "/" would otherwise swallow "/embed".
    for path, embed, footer, css, head in (
        ("/embed", True, [], EMBED_CSS, EMBED_HEAD),
        ("/", False, ["api"], PAGE_CSS, PAGE_HEAD),
    ):
        gr.mount_gradio_app(
            app,
            build_app(pipeline, embed=embed, gate=gate),
            path,
            footer_links=footer,
            css=css,
            head=head,
            theme=page_theme(),
            show_error=False,
            ssr_mode=False,
            run_history=False,
            max_file_size=gradio_upload,
        )
    app.state.gate = gate
    app.state.pipeline = pipeline

    # Outermost first on the way in: CORS answers preflights and decorates every reply, Guard checks access.
    app.add_middleware(
        Guard,
        token=token,
        basic=basic,
        csp=content_security_policy(origins),
        max_body=int(getattr(cfg, "max_body_bytes", 512 * 1024)),
        max_upload=gradio_upload,
        max_document=int(getattr(cfg, "upload_max_mb", 20)) * 1024 * 1024,
        rate_limit=str(getattr(cfg, "rate_limit", "")),
        auth_rate_limit=str(getattr(cfg, "auth_rate_limit", "")),
        counters=shared_counters(cfg, pipeline),
    )
    app.state.embedding_note = embedding_note(origins)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        allow_credentials=origins != ["*"],
        max_age=600,
    )
    return app


def shared_counters(cfg: Any, pipeline: Any) -> SharedCounters | None:
    """The store every replica shares, for rate limits (RAG_STORE=postgres), else None (per process)."""
    store = getattr(getattr(pipeline, "retriever", None), "store", None)
    if getattr(cfg, "store", "faiss") == "postgres" and callable(getattr(store, "count_hit", None)):
        return store
    return None
