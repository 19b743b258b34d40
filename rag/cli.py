"""The `rag` command: parses flags, builds the Config, dispatches to a subcommand, turns errors into one line.

Subcommands register themselves through the `rag.commands` entry-point group (see pyproject.toml), so
`rag serve` (package `ui`) and `rag eval` (package `eval`) exist without `rag` importing those packages.
Each entry point is `register(subparsers)`; the parser it adds sets `func(args, config) -> int`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from index.errors import RagError
from rag.config import Config

_ran: dict[str, str | None] = {}  # the subcommand `main` ran last (read by `console`)

# Commands in `rag` itself, so `python -m rag` works even where the package metadata is missing.
_BUILTIN = {"index": "rag.cmd_index:register", "ask": "rag.cmd_ask:register"}


def _registrars() -> dict[str, str]:
    found = dict(_BUILTIN)
    for ep in entry_points(group="rag.commands"):
        found[ep.name] = ep.value
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag", description="Ask questions about your documents; answers cite the passages they use."
    )
    parser.add_argument("--index-dir", help="index folder (default .rag, env RAG_INDEX_DIR)")
    parser.add_argument("--embed-model", help="embedding model: local folder or name (env RAG_EMBED_MODEL)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, target in sorted(_registrars().items()):
        module_name, _, attr = target.partition(":")
        try:
            module = __import__(module_name, fromlist=[attr])
        except ImportError as err:  # a broken optional part must not take the whole CLI down
            print(f"warning: command {name!r} unavailable ({err})", file=sys.stderr)
            continue
        getattr(module, attr)(sub)
    return parser


def _safe_text(value: str) -> str:
    """Command-line text with undecodable bytes (kept by Python as lone surrogates) shown as U+FFFD."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a message quoting odd bytes must still print
        reconfigure = getattr(stream, "reconfigure", None)
        if callable(reconfigure):
            reconfigure(errors="replace")
    parser = build_parser()
    args = parser.parse_args(argv)
    _ran["command"] = args.command
    for name in ("question", "query"):  # free text: non-UTF-8 bytes become U+FFFD instead of a crash
        value = getattr(args, name, None)
        if isinstance(value, str):
            setattr(args, name, _safe_text(value))
        elif isinstance(value, list):
            setattr(args, name, [_safe_text(v) if isinstance(v, str) else v for v in value])
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        config = Config.from_env(index_dir=args.index_dir, embed_model=args.embed_model)
        return int(args.func(args, config) or 0)
    except RagError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as err:  # disk full, permissions, a folder that vanished: the OS's words, one line
        where = f": {err.filename}" if err.filename else ""
        print(f"error: {err.strerror or err}{where}. Check the path and its permissions.", file=sys.stderr)
        return 1
    except Exception as err:  # never a traceback for a user; RAG_DEBUG=1 shows it for a bug report
        if os.environ.get("RAG_DEBUG"):
            raise
        print(
            f"error: unexpected {type(err).__name__}: {err}. Rerun with RAG_DEBUG=1, report the traceback.",
            file=sys.stderr,
        )
        return 1


# Commands that only print: nothing of theirs is left to finish once their output is flushed.
FAST_EXIT = frozenset({"ask", "search"})


def console() -> None:
    """The `rag` executable: `main`, then a fast exit for `rag ask` / `rag search` run in-process.

    Once torch is loaded, the interpreter's normal exit tears down its thread pools and module state for
    1.4-4 s (measured: `import sentence_transformers` then exit, 9.3-11.8 s against 7.9 s with `os._exit`).
    The answer is already printed by then, so these commands flush their streams and leave at once.
    Tests call `main()`, which never exits the process.
    """
    code = main()
    if _ran.get("command") in FAST_EXIT and "torch" in sys.modules:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing left to say anyway
                pass
        logging.shutdown()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console()
