"""One FastAPI app for everything: the HTTP API, the chat page at `/`, the embed view at `/embed`,
`/embed.js` (the `<rag-chat>` web component) and the OpenAPI description at `/docs`.

Operations, all read when the server is built:
- auth: `RAG_AUTH_TOKEN` (send `Authorization: Bearer <token>`, or open `/?token=<token>` once: a cookie
  keeps the browser signed in) and/or `RAG_BASIC_AUTH=user:pass` (the browser's own login prompt).
  `/api/health` and `/embed.js` stay open, so probes and embedding pages work without the secret.
- `Config.allowed_origins`: CORS for the API and `Content-Security-Policy: frame-ancestors` for embedding
  ("*" = anyone, and then no frame-ancestors restriction is sent).
- `Config.concurrency`: one `GenerationGate` shared by chat and API; the rest queue.
Leaves out TLS (put a reverse proxy in front) and user accounts.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from collections.abc import Mapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from ui.api import build_router
from ui.app import EMBED_CSS, EMBED_HEAD, PAGE_CSS, PAGE_HEAD, build_app, page_theme
from ui.chat import PipelineLike
from ui.docs_offline import offline_docs
from ui.gate import GenerationGate

STATIC = Path(__file__).parent / "static"
COOKIE = "rag_token"
OPEN_PATHS = ("/api/health", "/embed.js", "/ui-static/")
MAX_API_BODY = 512 * 1024  # bytes; questions are capped far lower, this stops abuse before parsing


def parse_origins(value: str) -> list[str]:
    """Example: parse_origins("https://a.example, https://b.example") -> ['https://a.example', 'https://b.example']."""
    origins = [o.strip().rstrip("/") for o in (value or "").split(",") if o.strip()]
    return ["*"] if not origins or "*" in origins else origins


def frame_ancestors(origins: list[str]) -> str | None:
    """The CSP value for who may frame the chat; None when anyone may."""
    return None if origins == ["*"] else "frame-ancestors 'self' " + " ".join(origins)


class Guard:
    """ASGI middleware: access control (token / basic auth), API body limit, security headers."""

    def __init__(self, app: Any, *, token: str = "", basic: str = "", csp: str | None = None) -> None:
        self.app, self.token, self.basic, self.csp = app, token, basic, csp

    def _authorized(self, headers: Mapping[str, str], query: dict[str, list[str]]) -> tuple[bool, bool]:
        """(allowed, came with ?token= so a cookie should be set)."""
        if not self.token and not self.basic:
            return True, False
        auth = headers.get("authorization", "")
        if self.token:
            if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip(), self.token):
                return True, False
            if any(hmac.compare_digest(t, self.token) for t in query.get("token", [])):
                return True, True
            cookie = SimpleCookie(headers.get("cookie", ""))
            if COOKIE in cookie and hmac.compare_digest(cookie[COOKIE].value, self.token):
                return True, False
        if self.basic and auth.lower().startswith("basic "):
            try:
                given = base64.b64decode(auth[6:].strip()).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                given = ""
            if hmac.compare_digest(given, self.basic):
                return True, False
        return False, False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        is_open = scope.get("method") == "OPTIONS" or path.startswith(OPEN_PATHS)
        allowed, set_cookie = (True, False) if is_open else self._authorized(headers, query)
        if not allowed:
            return await self._reject(scope, send, 401, "Unauthorized", self._how_to_auth())
        if path.startswith("/api/") and int(headers.get("content-length") or 0) > MAX_API_BODY:
            return await self._reject(
                scope, send, 413, "RequestTooLarge", f"Request body over {MAX_API_BODY} bytes."
            )
        secure = headers.get("x-forwarded-proto", scope.get("scheme", "http")) == "https"

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff")]
                if self.csp:
                    extra.append((b"content-security-policy", self.csp.encode()))
                if set_cookie:
                    same = "None; Secure" if secure else "Lax"  # cross-site iframes need SameSite=None
                    extra.append(
                        (b"set-cookie", f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite={same}".encode())
                    )
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _how_to_auth(self) -> str:
        ways = []
        if self.token:
            ways.append("send 'Authorization: Bearer <token>' or open the page with ?token=<token>")
        if self.basic:
            ways.append("sign in with the user name and password (basic auth)")
        return "Access needs credentials: " + ", or ".join(ways) + "."

    async def _reject(self, scope: dict, send: Any, status: int, kind: str, detail: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"error": kind, "detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401 and self.basic:
            headers.append((b"www-authenticate", b'Basic realm="rag-chat", charset="UTF-8"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


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
    origins = parse_origins(getattr(cfg, "allowed_origins", "*"))
    gate = GenerationGate(getattr(cfg, "concurrency", 1))

    app = FastAPI(
        title="rag-chat",
        description="Ask questions about the indexed documents; answers cite the passages they use.",
        version="0.1.0",
    )
    app.include_router(build_router(pipeline, gate))
    offline_docs(app)  # /docs and /redoc from a PyPI package, not a CDN (chat page helper, issue 9)

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
        )
    app.state.gate = gate
    app.state.pipeline = pipeline

    # Outermost first on the way in: CORS answers preflights and decorates every reply, Guard checks access.
    app.add_middleware(Guard, token=token, basic=basic, csp=frame_ancestors(origins))
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        allow_credentials=origins != ["*"],
        max_age=600,
    )
    return app
