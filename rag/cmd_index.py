"""`rag index [PATH ...]` and `rag search QUERY [-k N] [--json]`.

`rag index` builds or updates the index (default: the folders in RAG_CORPUS, i.e. seeds/) and prints one
summary line; unreadable files are listed as warnings and skipped, the rest is indexed, and the command
then exits 1 (after a "N files failed" summary) so scripts notice; `--keep-going` exits 0 instead.
Per-file limits come from RAG_MAX_FILE_BYTES, RAG_MAX_UNPACKED_BYTES, RAG_MAX_PDF_PAGES, RAG_FILE_TIMEOUT.
`rag search` prints the top passages,
or a JSON list (`rag.records.hit_to_json`) with `--json`; a running `rag serve` for the index answers it
when there is one (`rag.discovery`; `--local` works here). Errors are `RagError`s; `rag.cli` prints them as
one line. Leaves out answering questions (`rag ask`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from index.loaders import LoadLimits
    from index.records import Hit

from index.errors import ConfigError, UnreadableFileError
from rag.config import Config
from rag.discovery import add_server_flags, choose_server, given

MIN_CHUNK_TOKENS, MAX_CHUNK_TOKENS = 20, 512


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `index` and `search` to the `rag` command."""
    p = subparsers.add_parser(
        "index",
        help="index files and folders (default: seeds/)",
        description="Build or update the search index. Re-running re-embeds only what changed.",
    )
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or folders (default: RAG_CORPUS, i.e. seeds/)"
    )
    _common(p)
    p.add_argument("--chunk-tokens", type=int, default=argparse.SUPPRESS, help="chunk size in model tokens")
    p.add_argument("--chunk-overlap", type=int, default=argparse.SUPPRESS, help="overlap in model tokens")
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="exit 0 even when some files could not be indexed (they are still listed)",
    )
    p.set_defaults(func=run_index)

    s = subparsers.add_parser(
        "search",
        help="print the passages that best match a query",
        description="Hybrid (dense + BM25) search.",
    )
    s.add_argument("query", nargs="+", metavar="QUERY", help="question or keywords")
    s.add_argument("-k", type=int, default=None, help="number of passages (default: RAG_K, 5)")
    s.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    _common(s)
    add_server_flags(s)
    s.set_defaults(func=run_search)


def _common(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: when absent here, the top-level `rag --index-dir` value (already in the Config) stands.
    p.add_argument(
        "--index-dir", default=argparse.SUPPRESS, help="index folder (default .rag, env RAG_INDEX_DIR)"
    )
    p.add_argument("--embed-model", default=argparse.SUPPRESS, help="embedding model (env RAG_EMBED_MODEL)")
    p.add_argument(
        "--store",
        choices=("faiss", "postgres"),
        default=argparse.SUPPRESS,
        help="where the index lives (env RAG_STORE; default faiss)",
    )
    p.add_argument(
        "--database-url",
        default=argparse.SUPPRESS,
        help="PostgreSQL URL for --store postgres (env RAG_DATABASE_URL)",
    )


def _config(args: argparse.Namespace, config: Config) -> Config:
    return config.replace(
        index_dir=getattr(args, "index_dir", None),
        embed_model=getattr(args, "embed_model", None),
        chunk_tokens=getattr(args, "chunk_tokens", None),
        chunk_overlap=getattr(args, "chunk_overlap", None),
        store=getattr(args, "store", None),
        database_url=getattr(args, "database_url", None),
    )


def quiet_libraries() -> None:
    """Library chatter (tokenizer forks, deprecations, progress bars) would bury one-line CLI output."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore")
    for name in ("sentence_transformers", "transformers", "faiss", "bm25s", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run_index(args: argparse.Namespace, config: Config) -> int:
    from index.builder import build_index
    from index.embedder import load_embedder
    from index.loaders import printable, use_limits
    from rag.retriever import open_config_store, store_location

    quiet_libraries()
    config = _config(args, config)
    paths = [Path(p) for p in args.paths] or config.corpus_paths
    missing = [str(p) for p in paths if not p.exists()]
    if missing:  # indexing without them would silently drop what they held before
        raise UnreadableFileError(
            f"No such file or folder: {', '.join(missing)}. Check the path and run again."
        )
    check_index_settings(config)
    store = open_config_store(config, must_exist=False)
    try:
        with use_limits(load_limits(config)):
            report = build_index(
                paths,
                config.index_path,
                load_embedder(config.embed_model, config.embed_batch, config.embed_url, config.embed_timeout),
                chunk_tokens=config.chunk_tokens,
                chunk_overlap=config.chunk_overlap,
                store=store,
            )
    finally:
        store.close()
    for path, reason in report.failures:
        print(f"warning: skipped {printable(path)}: {reason}", file=sys.stderr)
    print(f"{report.summary()} Index: {store_location(config)}")
    if report.failures and not getattr(args, "keep_going", False):
        print(
            f"error: {len(report.failures)} file(s) could not be indexed (listed above); the rest is "
            "indexed. Fix or remove them, or pass --keep-going to accept this.",
            file=sys.stderr,
        )
        return 1
    return 0


def load_limits(config: Config) -> LoadLimits:
    """The per-file ingestion limits from the config (RAG_MAX_FILE_BYTES & co.)."""
    from index.loaders import LoadLimits

    return LoadLimits(
        max_file_bytes=config.max_file_bytes,
        max_unpacked_bytes=config.max_unpacked_bytes,
        max_pdf_pages=config.max_pdf_pages,
        file_timeout=config.file_timeout,
    )


def check_index_settings(config: Config) -> None:
    """ConfigError naming the fix for chunk sizes the embedder cannot use and unusable index folders."""
    if not MIN_CHUNK_TOKENS <= config.chunk_tokens <= MAX_CHUNK_TOKENS:
        raise ConfigError(
            f"--chunk-tokens {config.chunk_tokens} is out of range; use {MIN_CHUNK_TOKENS} to "
            f"{MAX_CHUNK_TOKENS} (RAG_CHUNK_TOKENS, default 200)."
        )
    if not 0 <= config.chunk_overlap < config.chunk_tokens // 2:
        raise ConfigError(
            f"--chunk-overlap {config.chunk_overlap} must be at least 0 and under half of --chunk-tokens "
            f"({config.chunk_tokens}); the default is 40."
        )
    where = config.index_path
    if where.exists() and not where.is_dir():
        raise ConfigError(
            f"The index folder {where} is a file; point --index-dir (RAG_INDEX_DIR) at a folder."
        )
    existing = next((p for p in (where, *where.absolute().parents) if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"Cannot write the index folder {where} ({existing} is not writable); fix its permissions or "
            "choose another with --index-dir (RAG_INDEX_DIR)."
        )


def run_search(args: argparse.Namespace, config: Config) -> int:
    quiet_libraries()
    config = _config(args, config).replace(server_url=args.server_url)
    query = " ".join(args.query).strip()
    if not query:
        from index.errors import QueryError

        raise QueryError("The query is empty: type a question or some keywords.")
    # A running server has opened its own store and model; naming another one here means working here.
    ours = any(getattr(args, name, None) is not None for name in ("embed_model", "store", "database_url"))
    url = choose_server(config, local=args.local or ours)
    k = args.k if args.k is not None else config.k
    if url:
        from rag.remote import RemoteRag

        hits = RemoteRag(url, timeout=config.generation_timeout).search(query, given(args.k, "RAG_K", k))
    else:
        from rag.retriever import open_retriever

        retriever = open_retriever(config)
        try:
            hits = retriever.search(query, k)
        finally:
            retriever.store.close()
    print_hits(hits, as_json=args.json)
    return 0


def print_hits(hits: Sequence[Hit], as_json: bool) -> None:
    """`rag search` output: numbered passages with their scores, or the `hit_to_json` list."""
    from rag.records import hit_to_json

    if as_json:
        print(json.dumps([hit_to_json(h) for h in hits], ensure_ascii=False, indent=2))
        return
    if not hits:
        print("No passages found.")
        return
    width = min(100, max(40, _terminal_width() - 6))
    for h in hits:
        c = h.chunk
        dense, bm25 = h.scores.get("dense", 0.0), h.scores.get("bm25", 0.0)
        print(f"{h.rank}. [{h.score:.4f}] {c.source} [{c.start}:{c.end}] dense {dense:.3f}, bm25 {bm25:.2f}")
        passage = textwrap.shorten(" ".join(c.text.split()), width=width * 4, placeholder=" …")
        print(textwrap.indent(textwrap.fill(passage, width=width), "    "))


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100
