"""Route inventory: every route the server exposes (FastAPI's and each mounted Gradio app's), every method,
asked without credentials. Only the listed public ones may answer; the rest say 401."""

from __future__ import annotations

import re

import pytest
from fakes_ui import FakePipeline
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from rag.config import Config
from ui.server import build_server

pytestmark = pytest.mark.unit
PUBLIC = {"/api/health", "/embed.js", "/ui-static"}


def inventory(routes, prefix=""):
    for r in routes:
        if isinstance(r, Mount):
            sub = getattr(r.app, "routes", None)
            if sub is None:  # a static files mount: one entry
                yield prefix + r.path + "/x", {"GET"}
            else:
                yield from inventory(sub, prefix + r.path)
        elif not isinstance(r, Route | WebSocketRoute):  # an included router (FastAPI's, Gradio's)
            router = getattr(r, "original_router", r)
            yield from inventory(router.routes, prefix + getattr(r, "prefix", ""))
        elif isinstance(r, WebSocketRoute):
            yield prefix + r.path, {"WEBSOCKET"}
        elif isinstance(r, Route):
            yield prefix + r.path, set(r.methods or {"GET"}) - {"HEAD"} or {"GET"}


def test_every_route_needs_credentials_except_the_public_ones(tmp_path):
    cfg = Config.from_env({}, rate_limit="", auth_rate_limit="", feedback_path=str(tmp_path / "f.jsonl"))
    app = build_server(FakePipeline(config=cfg), env={"RAG_AUTH_TOKEN": "t0ken"})
    routes = sorted(inventory(app.routes))
    assert len(routes) > 80  # FastAPI's and both Gradio apps'
    checked = 0
    with TestClient(app) as c:
        for path, methods in routes:
            url = re.sub(r"\{[^}]+\}", "x", path) or "/"
            public = any(url == p or url.startswith(p + "/") for p in PUBLIC)
            for method in sorted(methods):
                if method == "WEBSOCKET":
                    with pytest.raises(WebSocketDisconnect):
                        with c.websocket_connect(url):
                            pass
                    continue
                status = c.request(method, url).status_code
                checked += 1
                if public:
                    assert status != 401, (method, url)
                else:
                    assert status == 401, (method, url, status)
    assert checked > 80
