"""Documents added from the browser: checked, saved to the server's uploads folder, indexed with the corpus.

The uploads folder (`Config.uploads_dir`, default `<index_dir>/uploads`) is indexed alongside
`Config.corpus` (the seeds are kept), incrementally (`index.builder.build_index` re-embeds only what
changed), and the running pipeline is switched to the new index without a restart. Checks: the setting
(`Config.uploads`: on | off | signed-in), a file type `rag index` reads, its size
(`Config.upload_max_mb`), a name without folders, and content that matches the type (text is UTF-8
without NUL bytes, .pdf starts %PDF, .docx is a zip). Leaves out per-file time and decompression limits
(index/ owns ingestion limits).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from index.builder import build_index
from index.loaders import SUPPORTED_SUFFIXES
from rag.errors import ConfigError, QueryError
from rag.retriever import open_retriever

MODES = ("on", "off", "signed-in")
_SAFE = re.compile(r"[^A-Za-z0-9._ -]+")
Progress = Callable[[str], None]
_LOCK = threading.Lock()  # one re-index at a time per process (page, embed and API share it)


def safe_name(name: str) -> str:
    """The name to store: no folders, no odd characters. Example: safe_name("../a b?.md") -> "a b_.md"."""
    base = Path(str(name).replace("\\", "/")).name.strip()
    base = _SAFE.sub("_", base).lstrip(".")
    if not base or Path(base).suffix.lower() not in SUPPORTED_SUFFIXES:
        raise QueryError(
            f"{name!r} is not a file type that can be indexed; use one of {', '.join(SUPPORTED_SUFFIXES)}."
        )
    return base[:120]


def check_content(name: str, data: bytes) -> None:
    """Refuse content that does not match its type (e.g. a binary renamed .txt)."""
    suffix = Path(name).suffix.lower()
    if suffix == ".pdf":
        ok = data.startswith(b"%PDF")
    elif suffix == ".docx":
        ok = data.startswith(b"PK\x03\x04")
    else:
        try:
            ok = b"\x00" not in data and bool(data.decode("utf-8").strip())
        except UnicodeDecodeError:
            ok = False
    if not ok:
        raise QueryError(f"{name}: the content is not a readable {suffix} file.")


class Uploads:
    """Upload, list, re-index and remove documents of a running `Pipeline` (thread-safe)."""

    def __init__(self, pipeline: Any) -> None:
        cfg = pipeline.config
        self.pipeline = pipeline
        self.mode = str(getattr(cfg, "uploads", "on")).strip().lower()
        if self.mode not in MODES:
            raise ConfigError(f"RAG_UPLOADS={self.mode!r}: use one of {', '.join(MODES)}.")
        self.max_bytes = int(getattr(cfg, "upload_max_mb", 20)) * 1024 * 1024
        self.folder = Path(getattr(cfg, "uploads_dir", "") or Path(cfg.index_dir) / "uploads")
        self._lock = _LOCK

    def allowed(self, signed_in: bool) -> str:
        """Why uploads are refused for this request ("" when they are allowed)."""
        if self.mode == "off":
            return "Uploads are switched off on this server (RAG_UPLOADS=off)."
        if self.mode == "signed-in" and not signed_in:
            return "Uploads need a signed-in user here (RAG_UPLOADS=signed-in): open the page with the token."
        if not hasattr(self.pipeline, "retriever"):
            return "This server cannot re-index (no index-backed pipeline)."
        return ""

    def list(self) -> list[dict[str, Any]]:
        if not self.folder.is_dir():
            return []
        return [
            {"name": p.name, "bytes": p.stat().st_size}
            for p in sorted(self.folder.iterdir())
            if p.is_file() and not p.name.startswith(".")
        ]

    def add(self, name: str, data: bytes, progress: Progress | None = None) -> dict[str, Any]:
        """Check and save one file, then re-index; the report says what changed."""
        stored = safe_name(name)
        if len(data) > self.max_bytes:
            raise QueryError(
                f"{stored} is {len(data) / 1e6:.1f} MB; the limit is {self.max_bytes // (1024 * 1024)} MB "
                "(RAG_UPLOAD_MAX_MB)."
            )
        check_content(stored, data)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{stored}.part"
        tmp.write_bytes(data)
        tmp.replace(self.folder / stored)  # whole files only: the indexer never sees half a file
        return self.reindex(progress)

    def remove(self, name: str, progress: Progress | None = None) -> dict[str, Any]:
        path = self.folder / safe_name(name)
        if not path.is_file():
            raise QueryError(f"No uploaded document {name!r}.")
        path.unlink()
        return self.reindex(progress)

    def reindex(self, progress: Progress | None = None) -> dict[str, Any]:
        """Index the corpus and the uploads folder; the running pipeline answers from the result."""
        say = progress or (lambda _msg: None)
        with self._lock:
            cfg = self.pipeline.config
            paths = [p for p in cfg.corpus_paths if p.exists()]
            if self.folder.is_dir() and any(self.folder.iterdir()):
                paths.append(self.folder)
            embedder = self.pipeline.retriever.embedder
            t0 = time.perf_counter()
            say("Indexing…")
            report = build_index(paths, cfg.index_dir, embedder, progress=False)
            say("Loading the new index…")
            # One attribute swap: questions being answered finish on the old index, new ones use the new.
            self.pipeline.retriever = open_retriever(cfg, embedder=embedder)
            seconds = time.perf_counter() - t0
        failures = [{"file": str(f), "reason": str(r)} for f, r in getattr(report, "failures", [])]
        out = {
            "documents": getattr(report, "documents", None),
            "chunks": getattr(report, "chunks", None),
            "added": getattr(report, "added", None),
            "removed": getattr(report, "removed", None),
            "seconds": round(seconds, 2),
            "failures": failures,
            "uploads": self.list(),
        }
        say(f"Indexed: {out['documents']} documents, {out['chunks']} passages ({seconds:.1f} s).")
        return out
