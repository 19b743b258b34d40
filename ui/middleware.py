"""The server's front door, one ASGI middleware: who may come in, how much they may send, how often,
and the security headers on every reply.

In order: failed-sign-in rate limit (429), access control (token / basic auth; 401), per-client rate
limit on the answering routes (429), request body limit counted while the body is read, chunked or not
(413), JSON with lone surrogate escapes (400), then the app, whose replies get `nosniff`, a
Content-Security-Policy and `Referrer-Policy`. Marks `scope["state"]["authorized"]` so open routes
(health) can hide details from anonymous callers.
Not covered: CORS (Starlette's CORSMiddleware, outside this one) and TLS (a reverse proxy's job).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

import anyio

from ui.limits import RateLimit, SharedCounters

COOKIE = "rag_token"
OPEN_PATHS = ("/api/health", "/embed.js", "/ui-static/")
# prefixes of POST routes; /api/ask covers /api/ask/stream, /api/documents uploads and re-indexing
RATE_LIMITED = ("/api/ask", "/api/search", "/api/feedback", "/api/documents")
UPLOAD_SUFFIX = "/gradio_api/upload"
DOCUMENTS_PATH = "/api/documents"  # POST: one uploaded document, limited by RAG_UPLOAD_MAX_MB, not the API's
MULTIPART_SLACK = 64 * 1024  # form boundaries and headers around an uploaded file


class BodyTooLarge(Exception):
    """Raised inside `receive` when the body passes its limit."""


def _same(given: str, secret: str) -> bool:
    # bytes, not str: compare_digest raises TypeError on non-ASCII text, which a client controls.
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), secret.encode("utf-8"))


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


class Guard:
    """ASGI middleware: see the module docstring. `csp` is the full Content-Security-Policy value."""

    def __init__(
        self,
        app: Any,
        *,
        token: str = "",
        basic: str = "",
        csp: str = "",
        max_body: int = 512 * 1024,
        max_upload: int = 10_000_000,
        max_document: int = 20 * 1024 * 1024,
        rate_limit: str = "",
        auth_rate_limit: str = "",
        counters: SharedCounters | None = None,
    ) -> None:
        self.app, self.token, self.basic, self.csp = app, token, basic, csp
        self.max_body, self.max_upload, self.max_document = max_body, max_upload, max_document
        self.requests = RateLimit(rate_limit, counters)
        self.failures = RateLimit(auth_rate_limit, counters, scope="sign-in")

    def _authorized(self, headers: Mapping[str, str], query: dict[str, list[str]]) -> tuple[bool, bool]:
        """(allowed, came with ?token= so a cookie should be set)."""
        if not self.token and not self.basic:
            return True, False
        auth = headers.get("authorization", "")
        if self.token:
            if auth.lower().startswith("bearer ") and _same(auth[7:].strip(), self.token):
                return True, False
            if any(_same(t, self.token) for t in query.get("token", [])):
                return True, True
            try:
                cookie = SimpleCookie(headers.get("cookie", ""))
            except CookieError:
                cookie = SimpleCookie()
            if COOKIE in cookie and _same(cookie[COOKIE].value, self.token):
                return True, False
        if self.basic and auth.lower().startswith("basic "):
            try:
                given = base64.b64decode(auth[6:].strip()).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                given = ""
            if _same(given, self.basic):
                return True, False
        return False, False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        client = (scope.get("client") or ("unknown", 0))[0]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        is_open = scope.get("method") == "OPTIONS" or path.startswith(OPEN_PATHS)
        allowed, set_cookie = self._authorized(headers, query)
        scope.setdefault("state", {})["authorized"] = allowed
        if not allowed and not is_open:
            wait = await _off_loop(self.failures.retry_after, client, self.failures.shared)
            if wait:
                return await self._reject(
                    scope, send, 429, "TooManyAttempts", f"Too many failed sign-ins; retry in {wait} s.", wait
                )
            await _off_loop(self.failures.hit, client, self.failures.shared)
            return await self._reject(scope, send, 401, "Unauthorized", self._how_to_auth())
        if path.startswith(RATE_LIMITED) and scope.get("method") == "POST":
            wait = await _off_loop(self.requests.hit, client, self.requests.shared)
            if wait:
                return await self._reject(
                    scope, send, 429, "TooManyRequests", f"Rate limit reached; retry in {wait} s.", wait
                )
        if scope["type"] == "http":
            gradio_file = path.endswith(UPLOAD_SUFFIX)
            upload = gradio_file or (path == DOCUMENTS_PATH and scope.get("method") == "POST")
            if not upload:
                limit = self.max_body
            else:  # a file: streamed to its handler and counted on the way, never read whole here
                limit = (self.max_upload if gradio_file else self.max_document) + MULTIPART_SLACK
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                return await self._reject(
                    scope, send, 413, "RequestTooLarge", f"Request body over {limit} bytes."
                )
            if not upload and scope.get("method") in ("POST", "PUT", "PATCH"):
                body = await self._read_body(receive, limit)
                if body is None:
                    return await self._reject(
                        scope, send, 413, "RequestTooLarge", f"Request body over {limit} bytes."
                    )
                if path.startswith("/api/") and b"\\u" in body and self._bad_json(body):
                    return await self._reject(
                        scope,
                        send,
                        400,
                        "InvalidJSON",
                        "The JSON body has an invalid \\u escape (a lone surrogate); send valid UTF-8 text.",
                    )
                receive = self._replay(body, receive)
            else:
                receive = self._counting(receive, limit)
        # uvicorn sets the scheme from X-Forwarded-Proto for trusted proxies only (RAG_TRUSTED_PROXIES).
        secure = scope.get("scheme", "http") == "https"
        started = False

        async def send_with_headers(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                if self.csp:
                    extra.append((b"content-security-policy", self.csp.encode()))
                if set_cookie:
                    same = "None; Secure" if secure else "Lax"  # cross-site iframes need SameSite=None
                    extra.append(
                        (b"set-cookie", f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite={same}".encode())
                    )
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except BodyTooLarge:
            if not started:
                await self._reject(scope, send, 413, "RequestTooLarge", "Request body over the upload limit.")

    @staticmethod
    async def _read_body(receive: Any, limit: int) -> bytes | None:
        """The whole body, or None as soon as it passes `limit` (memory stays bounded by `limit`)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    def _replay(body: bytes, receive: Any) -> Any:
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls: wait for the disconnect, as the server would

        return replay

    @staticmethod
    def _counting(receive: Any, limit: int) -> Any:
        size = 0

        async def counted() -> dict:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    raise BodyTooLarge()
            return message

        return counted

    @staticmethod
    def _bad_json(body: bytes) -> bool:
        try:
            return _has_lone_surrogate(json.loads(body))
        except (ValueError, RecursionError):
            return False  # not JSON at all: the route's own validation answers 422

    def _how_to_auth(self) -> str:
        ways = []
        if self.token:
            ways.append("send 'Authorization: Bearer <token>' or open the page with ?token=<token>")
        if self.basic:
            ways.append("sign in with the user name and password (basic auth)")
        return "Access needs credentials: " + ", or ".join(ways) + "."

    async def _reject(
        self, scope: dict, send: Any, status: int, kind: str, detail: str, retry_after: int = 0
    ) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"error": kind, "detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401 and self.basic:
            headers.append((b"www-authenticate", b'Basic realm="rag-chat", charset="UTF-8"'))
        if retry_after:
            headers.append((b"retry-after", str(retry_after).encode()))
        if status == 413:  # stop the rest of an oversized upload instead of reading and discarding it
            headers.append((b"connection", b"close"))
        if self.csp:
            headers.append((b"content-security-policy", self.csp.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _off_loop(check: Callable[[str], int], client: str, blocking: bool) -> int:
    """`check(client)`, in a worker thread when it waits on the database (shared rate limits): a
    round-trip must not stall every other request on the event loop."""
    return await anyio.to_thread.run_sync(check, client) if blocking else check(client)
