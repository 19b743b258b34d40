"""`rag ask QUESTION`: answer from the indexed documents with verified, numbered citations.

On a terminal the draft streams as the model writes it; the verified answer follows (when it differs) and
then the numbered sources. `--json` prints one object in the shared `answer_to_json` shape. Prior turns come
from `--history FILE.json` (a list of {"role", "content"}). Errors are RagErrors, printed as one line by
rag/cli.py.

When a `rag serve` is running for the index (or `--server` / RAG_SERVER_URL names one) it answers, in well
under a second instead of seconds of loading models (`rag.discovery` decides, `rag.remote` asks); the output
is the same either way, because both paths yield the same events into `render`. Settings given on this
command (`--backend`, `-k`, or RAG_BACKEND, RAG_K) are sent; the rest are the server's.
This module imports nothing heavy: the pipeline only when the work is done here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from index.errors import QueryError
from rag.config import Config
from rag.discovery import add_server_flags, choose_server, given
from rag.records import Answer, Event, Final, Sources, Token, Turn, answer_to_json


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("ask", help="answer a question from the indexed documents, with citations")
    p.add_argument("question", help="the question, in quotes")
    p.add_argument("--backend", help="generator: local (default), openai, extractive (env RAG_BACKEND)")
    p.add_argument("-k", "--k", type=int, dest="k", help="passages to retrieve (env RAG_K)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--no-stream", action="store_true", help="print only the final answer, not the draft")
    p.add_argument("--history", help="JSON file with earlier turns: [{\"role\": \"user\", \"content\": ...}]")
    p.add_argument("--llm-model", help="local: path to a GGUF file; openai: model name (env RAG_LLM_MODEL)")
    p.add_argument("--llm-base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1")
    add_server_flags(p)
    p.set_defaults(func=run)


def load_history(path: str | None) -> list[Turn]:
    """Turns from a JSON file; QueryError naming the expected shape when it is malformed."""
    if not path:
        return []
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        turns = [Turn(role=str(t["role"]), content=str(t["content"])) for t in data]
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise QueryError(
            f"Cannot read history from {path} ({err}). Give a JSON list of {{\"role\", \"content\"}} objects."
        ) from err
    return turns


def run(args: argparse.Namespace, config: Config) -> int:
    config = config.replace(
        backend=args.backend, k=args.k, llm_model=args.llm_model, llm_base_url=args.llm_base_url,
        server_url=args.server_url,
    )
    history = load_history(args.history)
    # A running server has built its generator already; a model or endpoint named here needs our own.
    url = choose_server(config, local=args.local or bool(args.llm_model or args.llm_base_url))
    events: Iterator[Event]
    if url:
        from rag.remote import RemoteRag

        events = RemoteRag(url, timeout=config.generation_timeout).stream(
            args.question, history, k=given(args.k, "RAG_K", config.k),
            backend=given(args.backend, "RAG_BACKEND", config.backend),
        )
    else:
        from rag.pipeline import build_pipeline

        events = build_pipeline(config).stream(args.question, history, k=config.k, backend=config.backend)
    return render(events, as_json=args.json, stream=not args.no_stream, out=sys.stdout)


def render(events: Iterable[Event], as_json: bool, stream: bool, out: Any) -> int:
    """Print an answer's events: the live draft on a terminal, then the verified answer and its sources."""
    live = not as_json and stream and out.isatty()
    answer: Answer | None = None
    draft: list[str] = []
    for event in events:
        if isinstance(event, Sources) and live and event.standalone_question:
            print(f"(understood as: {event.standalone_question})", file=out)
        elif isinstance(event, Token):
            draft.append(event.text)
            if live:
                out.write(event.text)
                out.flush()
        elif isinstance(event, Final):
            answer = event.answer
    assert answer is not None
    if as_json:
        json.dump(answer_to_json(answer), out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    if live:
        out.write("\n")
        if "".join(draft).strip() != answer.text.strip():
            print(f"\nVerified answer: {answer.text}", file=out)
    else:
        print(answer.text, file=out)
    print_sources(answer, out)
    return 0


def print_sources(answer: Answer, out: Any) -> None:
    """The numbered sources under an answer: cited quotes, or the closest passages after a refusal."""
    if answer.citations:
        print("\nSources:", file=out)
        for c in answer.citations:
            print(f"  [{c.n}] {c.source} (chars {c.start}-{c.end}): \"{_short(c.quote)}\"", file=out)
    elif answer.retrieved:
        print("\nClosest passages:", file=out)
        for i, h in enumerate(answer.retrieved[:3], 1):
            print(f"  {i}. {h.chunk.source}: \"{_short(h.chunk.text)}\"", file=out)


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
