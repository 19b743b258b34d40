"""`rag serve`: builds the pipeline, starts the model warming up in the background, prints the URLs and
runs the one server (chat page, HTTP API, embed view) with uvicorn.

Flags override `RAG_*` settings of the same names (`--host` = RAG_HOST, `--port` = RAG_PORT, ...).
Secrets (RAG_AUTH_TOKEN, RAG_BASIC_AUTH) are environment-only, read by `ui.server` when it is built.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
from typing import Any

from rag.cmd_index import quiet_libraries
from rag.config import Config
from rag.errors import ConfigError

log = logging.getLogger("ui.cli")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="start the chat page, HTTP API and embed view",
        description="Serve the chat page (/), the embed view (/embed/), the HTTP API (/api, docs at /docs).",
    )
    p.add_argument("--host", help="interface to listen on (default 127.0.0.1, env RAG_HOST)")
    p.add_argument("--port", type=int, help="port (default 7860, env RAG_PORT)")
    p.add_argument("--backend", help="generator: local | openai | extractive (env RAG_BACKEND)")
    p.add_argument(
        "--concurrency", type=int, help="local-model generations at once; others queue (env RAG_CONCURRENCY)"
    )
    p.add_argument(
        "--allowed-origins", help="origins allowed to embed/call, comma-separated (env RAG_ALLOWED_ORIGINS)"
    )
    p.add_argument(
        "--no-warm-up", action="store_true", help="do not load the model before the first question"
    )
    p.set_defaults(func=run)


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as err:
            raise ConfigError(
                f"Cannot listen on {host}:{port} ({err.strerror}). Pick another with --port or RAG_PORT."
            ) from err


def urls(config: Config) -> list[str]:
    """Example: urls(Config(port=7860)) -> ['Chat page: http://127.0.0.1:7860/', ...]."""
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    base = f"http://{host}:{config.port}"
    return [
        f"Chat page:  {base}/",
        f"Embed view: {base}/embed/   (web component: {base}/embed.js, see docs/embedding.md)",
        f"HTTP API:   {base}/api/ask   (OpenAPI docs: {base}/docs, health: {base}/api/health)",
    ]


def _warm_up(pipeline: Any, backend: str) -> None:
    try:
        pipeline.warm_up(backend)
        print(f"Model ready ({backend}).", file=sys.stderr, flush=True)
    except Exception as err:  # the server still answers; the first question will report the problem
        log.warning("warm-up failed: %s", err)
        print(f"warning: model warm-up failed: {err}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, config: Config) -> int:
    import uvicorn

    from rag.pipeline import build_pipeline
    from ui.server import build_server

    config = config.replace(
        host=args.host,
        port=args.port,
        backend=args.backend,
        concurrency=args.concurrency,
        allowed_origins=args.allowed_origins,
    )
    _check_port_free(config.host, config.port)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    pipeline = build_pipeline(config)
    app = build_server(pipeline)
    if not args.no_warm_up:
        threading.Thread(target=_warm_up, args=(pipeline, config.backend), daemon=True).start()
    for line in urls(config):
        print(line, flush=True)
    print(app.state.embedding_note, flush=True)
    if os.environ.get("RAG_AUTH_TOKEN"):
        print("Access token required: open the chat page with ?token=<RAG_AUTH_TOKEN> once.", flush=True)
    if os.environ.get("RAG_BASIC_AUTH"):
        print("Basic auth required (RAG_BASIC_AUTH).", flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", timeout_graceful_shutdown=3)
    return 0
