"""`rag serve`: builds the pipeline, starts the model warming up in the background, prints the URLs and
runs the one server (chat page, HTTP API, embed view) with uvicorn.

Flags override `RAG_*` settings of the same names (`--host` = RAG_HOST, `--port` = RAG_PORT, ...).
Secrets (RAG_AUTH_TOKEN, RAG_BASIC_AUTH) are environment-only, read by `ui.server` when it is built.
While it runs, `<index_dir>/serve.json` announces it to `rag ask` and `rag search` (rag/discovery.py).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

from rag.cmd_index import quiet_libraries
from rag.config import Config
from rag.discovery import remove_serve_file, serve_file, write_serve_file
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


def trusted_proxies(value: str) -> list[str]:
    """RAG_TRUSTED_PROXIES as uvicorn's `forwarded_allow_ips`: the peers whose X-Forwarded-For names the
    client (the rate limits count that address) and whose X-Forwarded-Proto names the scheme.

    uvicorn itself silently takes a mistyped entry as a literal that never matches, so every client behind
    the proxy would share one rate-limit budget without a word; here it is an error naming the fix.
    Example: trusted_proxies("127.0.0.1, 10.0.0.0/8") -> ['127.0.0.1', '10.0.0.0/8']
    Example: trusted_proxies("none") -> []
    """
    if value.strip().lower() in ("none", "off"):
        return []
    entries = [e.strip() for e in value.split(",") if e.strip()]
    if entries == ["*"]:
        return entries
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False) if "/" in entry else ipaddress.ip_address(entry)
        except ValueError as err:
            raise ConfigError(
                f"RAG_TRUSTED_PROXIES: {entry!r} is not an IP address or network. List your reverse "
                "proxies' addresses, e.g. RAG_TRUSTED_PROXIES=127.0.0.1,10.0.0.0/8; '*' trusts any peer, "
                "'none' no proxy."
            ) from err
    return entries


def uvicorn_options(config: Config) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` (ConfigError on a bad RAG_TRUSTED_PROXIES).

    Proxy headers go through uvicorn's own middleware, which rewrites the ASGI client and scheme for
    trusted peers only, so our middleware and the rate limits see the address the proxy reports.
    """
    proxies = trusted_proxies(config.trusted_proxies)
    return {"host": config.host, "port": config.port, "log_level": "warning", "timeout_graceful_shutdown": 3,
            "proxy_headers": bool(proxies), "forwarded_allow_ips": proxies or None}


def base_url(config: Config) -> str:
    """Where a client on this machine reaches the server.

    Example: base_url(Config(host="::1")) -> 'http://[::1]:7860'
    """
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    return f"http://[{host}]:{config.port}" if ":" in host else f"http://{host}:{config.port}"


def urls(config: Config) -> list[str]:
    """Example: urls(Config(port=7860)) -> ['Chat page: http://127.0.0.1:7860/', ...]."""
    base = base_url(config)
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
    options = uvicorn_options(config)
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
    # `rag ask` / `rag search` find us through this file and skip loading models (rag/discovery.py). It is
    # written before uvicorn listens: a client probes /api/health first and works in-process until then.
    announced = _announce(config)
    if threading.current_thread() is threading.main_thread():
        # uvicorn shuts down gracefully on SIGTERM, then raises it again: with the default action the process
        # would end there, skipping the `finally` below, and leave a stale serve.json behind.
        signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        uvicorn.run(app, **options)
    finally:
        if announced:
            remove_serve_file(config.index_dir)
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _announce(config: Config) -> bool:
    """Write <index_dir>/serve.json; a folder we cannot write only costs the CLI its fast path."""
    try:
        write_serve_file(config.index_dir, base_url(config))
    except OSError as err:
        print(f"warning: cannot write {serve_file(config.index_dir)} ({err.strerror}); `rag ask` will not "
              "find this server unless RAG_SERVER_URL names it.", file=sys.stderr, flush=True)
        return False
    return True
