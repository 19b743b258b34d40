"""Run gold questions through a `Pipeline` (anything with `.stream()`), timing each one, with a progress bar.

A question whose pipeline call raises is recorded with its error and scored as a failure; the run goes
on. Each record is the `rag ask --json` shape plus `id`, `expected_answers`, `expected_sources`, `tags`,
`latency_ms` (measured here: first streamed token and final answer), `draft` (the streamed tokens, before
verification: what the model said when the final answer differs), `error` and per-question `metrics`.
A question with `history` in the gold set is asked as a follow-up in that conversation.
Leaves out: concurrency (one question at a time).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from tqdm import tqdm

from eval.dataset import Item, check_sources
from eval.metrics import score_question
from rag.records import Event, Final, Sources, Token, Turn, answer_to_json


class StreamingPipeline(Protocol):
    """The part of `rag.pipeline.Pipeline` the runner drives."""

    def stream(self, question: str, history: Sequence[Any] = (), k: int | None = None,
               backend: str | None = None) -> Iterator[Event]: ...

    def document(self, source: str) -> Any: ...


def metric_ks(k: int) -> list[int]:
    """Cut-offs reported for retrieval metrics. Example: metric_ks(5) -> [1, 3, 5]; metric_ks(2) -> [1, 2]"""
    return sorted({c for c in (1, 3, k) if c <= k})


def check_dataset_sources(pipeline: StreamingPipeline, items: Iterable[Item]) -> None:
    """Raise DatasetError before any question runs if an expected source is not in the index."""
    items = list(items)
    names = {s for item in items for s in item.sources}
    check_sources(items, [s for s in names if pipeline.document(s) is not None])


def _empty_answer(item: Item, backend: str) -> dict[str, Any]:
    return {"question": item.question, "standalone_question": item.question, "answer": "", "refused": False,
            "citations": [], "retrieved": [], "backend": backend, "timings_ms": {}, "reasons": [],
            "support": []}


def ask_one(pipeline: StreamingPipeline, item: Item, k: int, backend: str | None) -> dict[str, Any]:
    """Ask one question; return its record (without metrics). Errors are caught and recorded."""
    start = time.perf_counter()
    first: float | None = None
    retrieval: float | None = None
    final: Final | None = None
    error: str | None = None
    draft: list[str] = []
    try:
        history = [Turn(role, content) for role, content in item.history]
        for event in pipeline.stream(item.question, history, k=k, backend=backend):
            now = time.perf_counter()
            if isinstance(event, Sources) and retrieval is None:
                retrieval = now
            elif isinstance(event, Token):
                draft.append(event.text)
                if first is None and event.text:
                    first = now
            elif isinstance(event, Final):
                final = event
                break
        if final is None:
            error = "RuntimeError: the stream ended without a Final answer"
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001 - a failing question is a result, not a crash
        error = f"{type(err).__name__}: {err}"
    end = time.perf_counter()
    body = answer_to_json(final.answer) if final else _empty_answer(item, backend or "")
    ms = lambda t: None if t is None else round((t - start) * 1000, 1)  # noqa: E731
    return {
        "id": item.id,
        **body,
        "expected_answers": list(item.answers),
        "expected_sources": list(item.sources),
        "tags": list(item.tags),
        "latency_ms": {"retrieval": ms(retrieval),
                       "first_token": ms(first if first else (end if final else None)),
                       "total": ms(end) if final else None},
        "draft": "".join(draft),
        "error": error,
    }


def run_questions(pipeline: StreamingPipeline, items: Sequence[Item], k: int, backend: str | None = None,
                  progress: bool = True) -> list[dict[str, Any]]:
    """Ask every item in order and score it; returns the result records.

    Example: run_questions(pipeline, load_dataset("eval/datasets/seeds.jsonl"), k=5, backend="extractive")
    """
    ks = metric_ks(k)
    records: list[dict[str, Any]] = []
    passed = 0
    bar = tqdm(items, desc="eval", unit="q", disable=not progress, dynamic_ncols=True)
    for item in bar:
        record = ask_one(pipeline, item, k, backend)
        answer = None if record["error"] else record
        record["metrics"] = score_question(item, answer, ks)
        passed += record["metrics"]["outcome"] == "pass"
        records.append(record)
        bar.set_postfix(correct=f"{passed}/{len(records)}", refresh=False)
    return records
