"""Which `rag serve` (if any) answers `rag ask` and `rag search`, so a command need not load the models.

`rag serve` writes `<index_dir>/serve.json` ({"url", "pid", "started", "index_dir", "host"}) before it starts
listening and removes it at shutdown. `choose_server` decides, in this order:
1. `--local` or `RAG_SERVER_URL=off`: in-process (None).
2. `--server URL` or `RAG_SERVER_URL=URL`: that server, without probing; its errors name the fix.
3. the discovery file, when it was written on this machine, it and its pid belong to this user, the process
   is alive, it names this index folder, and `/api/health` answers 200 within `PROBE_TIMEOUT`; a file
   whose process is gone is removed (one from another machine sharing the folder is left alone).
4. in-process.
Leaves out talking to the server (`rag.remote`) and sharing one file among several servers (the last one
started wins; when it stops, the others are no longer found).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from index.errors import ConfigError
from rag.config import Config

T = TypeVar("T")
SERVE_FILE = "serve.json"
# Loopback health answers in a few ms; a server slower than this would not make the command faster anyway.
PROBE_TIMEOUT = 0.3


@dataclass(frozen=True)
class ServeInfo:
    """What a running `rag serve` tells the CLI about itself (never a secret)."""

    url: str  # base URL, e.g. http://127.0.0.1:7860
    pid: int
    started: str  # ISO 8601, UTC
    index_dir: str  # absolute
    host: str = ""  # the machine's name: a pid means nothing on another machine that shares the folder


def serve_file(index_dir: str | Path) -> Path:
    return Path(index_dir) / SERVE_FILE


def write_serve_file(index_dir: str | Path, url: str, pid: int | None = None) -> Path:
    """Announce a server for `index_dir`; atomic, so a reader never sees half a file."""
    path = serve_file(index_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = ServeInfo(
        url=url.rstrip("/"),
        pid=os.getpid() if pid is None else pid,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        index_dir=str(Path(index_dir).resolve()),
        host=socket.gethostname(),
    )
    tmp = path.with_name(f".{SERVE_FILE}.{info.pid}.tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_serve_file(index_dir: str | Path) -> ServeInfo | None:
    """The announced server, or None when there is no file or it is not one of ours."""
    try:
        data = json.loads(serve_file(index_dir).read_text(encoding="utf-8"))
        return ServeInfo(
            url=str(data["url"]), pid=int(data["pid"]), started=str(data["started"]),
            index_dir=str(data["index_dir"]), host=str(data.get("host", "")),
        )
    except (OSError, ValueError, TypeError, KeyError):
        return None


def remove_serve_file(index_dir: str | Path, pid: int | None = None) -> None:
    """Remove the file if it announces `pid` (default: this process); a newer server's file stays."""
    info = read_serve_file(index_dir)
    if info is not None and info.pid == (os.getpid() if pid is None else pid):
        serve_file(index_dir).unlink(missing_ok=True)


def own_process(pid: int) -> bool | None:
    """True: running and ours; False: gone; None: running under another user (never trusted).

    Example: own_process(os.getpid()) -> True
    """
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there; the health probe decides instead
        return True
    if pid <= 0:  # 0 and -1 would address process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return None
    return True


def is_loopback(url: str) -> bool:
    """Example: is_loopback("http://127.0.0.1:7860") -> True."""
    host = (urlsplit(url).hostname or "").lower()
    return host == "localhost" or host == "::1" or host.startswith("127.")


def healthy(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """True when `url`/api/health answers 200 within `timeout` seconds (the route is open, no secret)."""
    import httpx  # not at import: `rag index` never needs it

    try:
        # trust_env=False on loopback: an HTTP_PROXY without NO_PROXY=127.0.0.1 would route it elsewhere
        r = httpx.get(url + "/api/health", timeout=timeout, trust_env=not is_loopback(url))
    except httpx.HTTPError:
        return False
    return r.status_code == 200


def _owned_by_us(path: Path) -> bool:
    # A file someone else wrote could send our questions and RAG_AUTH_TOKEN to their address.
    getuid = getattr(os, "getuid", None)
    try:
        return getuid is None or path.stat().st_uid == getuid()
    except OSError:
        return False


def choose_server(config: Config, local: bool = False) -> str | None:
    """The base URL of the server that should answer, or None for in-process work (order: module doc).

    Example: choose_server(Config(server_url="http://127.0.0.1:7860/")) -> 'http://127.0.0.1:7860'
    """
    explicit = config.server_url.strip()
    if local or explicit.lower() == "off":
        return None
    if explicit:
        if not explicit.startswith(("http://", "https://")):
            raise ConfigError(
                f"RAG_SERVER_URL / --server {explicit!r} is not a server address; use http://HOST:PORT "
                "(where `rag serve` listens), or off to work in-process."
            )
        return explicit.rstrip("/")
    info = read_serve_file(config.index_dir)
    if info is None or info.host != socket.gethostname() or not _owned_by_us(serve_file(config.index_dir)):
        return None
    alive = own_process(info.pid)
    if alive is False:
        serve_file(config.index_dir).unlink(missing_ok=True)  # stale: that server was killed
    if not alive:
        return None
    if Path(info.index_dir) != config.index_path.resolve():  # a copied folder: that server reads another
        return None
    return info.url if healthy(info.url) else None


# --- the commands' side: flags, and what a request carries


def add_server_flags(p: argparse.ArgumentParser) -> None:
    """`--server URL` and `--local` for a command that a running `rag serve` can answer."""
    p.add_argument(
        "--server", "--server-url", dest="server_url", metavar="URL",
        help="answer through the rag serve at URL (env RAG_SERVER_URL; off = never; default: the one "
             "<index dir>/serve.json names, when it is up)",
    )
    p.add_argument("--local", action="store_true", help="work in-process even when a rag serve is running")


def given(flag: object, variable: str, value: T, env: Mapping[str, str] | None = None) -> T | None:
    """`value` when the user set it (flag or environment variable), else None: the server's own setting.

    Example: given(None, "RAG_K", 5, env={}) -> None; given(3, "RAG_K", 3, env={}) -> 3
    """
    env = os.environ if env is None else env
    return value if flag is not None or env.get(variable) else None
