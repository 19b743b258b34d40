"""The gold-set format: JSON lines `{"id", "question", "answers", "sources"}`, loaded and validated.

`answers` lists acceptable reference answers (a match on any one counts); an empty list means the documents
do not answer the question and the system must decline. `sources` lists the documents that support the
answer. `id` is optional (defaults to "line-N"); `tags` (a list of strings) is optional and free-form;
`history` (optional) is the conversation before a follow-up question,
`[{"role": "user"|"assistant", "content": ...}]`.
Every bad line is reported with its line number, and a bad file raises `DatasetError` before any question
runs. Blank lines and lines starting with `#` are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import RagError

KNOWN_KEYS = {"id", "question", "answers", "sources", "tags", "history"}


class DatasetError(RagError):
    """The evaluation dataset is missing or has invalid lines."""

    exit_code = 2


@dataclass(frozen=True)
class Item:
    """One gold question."""

    id: str
    question: str
    answers: tuple[str, ...]
    sources: tuple[str, ...]
    tags: tuple[str, ...] = ()
    line: int = 0
    history: tuple[tuple[str, str], ...] = ()  # (role, content) of earlier turns, oldest first

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass
class _Problems:
    lines: list[str] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        self.lines.append(f"line {line}: {message}")


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def _parse_line(raw: str, line: int, problems: _Problems) -> Item | None:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as err:
        problems.add(line, f"not valid JSON ({err.msg} at column {err.colno})")
        return None
    if not isinstance(obj, dict):
        problems.add(line, f"expected a JSON object, got {type(obj).__name__}")
        return None
    before = len(problems.lines)
    unknown = sorted(set(obj) - KNOWN_KEYS)
    if unknown:
        problems.add(line, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(KNOWN_KEYS))}")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        problems.add(line, '"question" must be a non-empty string')
    for key in ("answers", "sources"):
        if key not in obj:
            problems.add(line, f'"{key}" is missing (use [] for none)')
        elif not _str_list(obj[key]):
            problems.add(line, f'"{key}" must be a list of non-empty strings')
    if "tags" in obj and not _str_list(obj["tags"]):
        problems.add(line, '"tags" must be a list of non-empty strings')
    history = obj.get("history", [])
    if not (isinstance(history, list) and all(
            isinstance(t, dict) and t.get("role") in ("user", "assistant")
            and isinstance(t.get("content"), str) for t in history)):
        problems.add(line, '"history" must be a list of {"role": "user"|"assistant", "content": "..."}')
    item_id = obj.get("id", f"line-{line}")
    if not isinstance(item_id, str | int) or isinstance(item_id, bool) or not str(item_id).strip():
        problems.add(line, '"id" must be a non-empty string')
    if len(problems.lines) > before:
        return None
    return Item(
        id=str(item_id),
        question=question.strip(),  # type: ignore[union-attr]
        answers=tuple(a.strip() for a in obj["answers"]),
        sources=tuple(s.strip() for s in obj["sources"]),
        tags=tuple(obj.get("tags", ())),
        line=line,
        history=tuple((t["role"], t["content"]) for t in history),
    )


def parse_lines(lines: Iterable[str], name: str = "dataset") -> list[Item]:
    """Parse and validate JSON lines; raise DatasetError listing every bad line.

    Example: parse_lines(['{"question": "Who?", "answers": ["Nadella"], "sources": ["a.txt"]}'])[0].id
    -> "line-1"
    """
    problems = _Problems()
    items: list[Item] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        item = _parse_line(raw, number, problems)
        if item is None:
            continue
        if item.id in seen:
            problems.add(number, f"duplicate id {item.id!r} (first on line {seen[item.id]})")
            continue
        seen[item.id] = number
        items.append(item)
    if problems.lines:
        shown = problems.lines[:20]
        more = f"\n  ... and {len(problems.lines) - 20} more" if len(problems.lines) > 20 else ""
        raise DatasetError(
            f"{name} has {len(problems.lines)} invalid line(s); fix them and run again:\n  "
            + "\n  ".join(shown) + more
        )
    if not items:
        raise DatasetError(f"{name} contains no questions. Add JSON lines like "
                           '{"question": "...", "answers": ["..."], "sources": ["doc.txt"]}.')
    return items


def load_dataset(path: str | Path) -> list[Item]:
    """Load a JSONL gold set; raise DatasetError (with line numbers) if the file is missing or invalid."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise DatasetError(f"No dataset at {p}. Pass --dataset with a JSONL file of questions.") from err
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"Cannot read dataset {p} ({err}); it must be a UTF-8 JSONL file.") from err
    return parse_lines(text.splitlines(), name=str(p))


def check_sources(items: Iterable[Item], known: Iterable[str]) -> None:
    """Raise DatasetError if an item names a source that the index does not hold (e.g. a typo)."""
    known_set = set(known)
    problems = _Problems()
    for item in items:
        missing = [s for s in item.sources if s not in known_set]
        if missing:
            problems.add(item.line, f"source(s) not in the index: {', '.join(missing)}")
    if problems.lines:
        raise DatasetError(
            "The dataset names documents the index does not hold; fix the names or index them "
            "(`rag index`):\n  " + "\n  ".join(problems.lines[:20])
        )
