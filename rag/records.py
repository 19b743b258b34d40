"""Records of the answering stage: citations, answers and the events a streamed answer is made of."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from index.records import Hit


@dataclass(frozen=True)
class Turn:
    """One earlier message of a conversation."""

    role: str  # "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Citation:
    """A numbered source in the answer, pinned to the supporting span of the original document."""

    n: int  # the number shown in the answer, e.g. [1]
    source: str
    chunk_id: str
    start: int  # offsets of `quote` in the document text
    end: int
    quote: str  # the supporting sentence(s)
    title: str = ""


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    refused: bool
    citations: tuple[Citation, ...]
    retrieved: tuple[Hit, ...]
    backend: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    standalone_question: str = ""  # the follow-up rewritten for retrieval, if it differed
    notes: tuple[str, ...] = ()  # what verification changed (repaired/dropped citations), for debugging


# --- streaming events: Pipeline.stream() yields Sources first, then Tokens, then one Final.


@dataclass(frozen=True)
class Sources:
    """Retrieved passages, known before the model writes anything."""

    hits: tuple[Hit, ...]
    standalone_question: str = ""


@dataclass(frozen=True)
class Token:
    """A piece of the draft answer as the model writes it (not yet verified)."""

    text: str


@dataclass(frozen=True)
class Final:
    """The verified answer; its text may differ from the streamed draft (citations repaired, refusal)."""

    answer: Answer


Event = Sources | Token | Final


def hit_to_json(hit: Hit, rank: int | None = None) -> dict[str, Any]:
    """The `rag search --json` item shape."""
    c = hit.chunk
    return {
        "rank": hit.rank if rank is None else rank,
        "score": round(float(hit.score), 6),
        "source": c.source,
        "title": c.title,
        "chunk_id": c.id,
        "start": c.start,
        "end": c.end,
        "text": c.text,
        "scores": {k: round(float(v), 6) for k, v in hit.scores.items()},
    }


def answer_to_json(answer: Answer) -> dict[str, Any]:
    """The `rag ask --json` shape, shared by the CLI, the HTTP API and the eval harness."""
    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question or answer.question,
        "answer": answer.text,
        "refused": answer.refused,
        "citations": [
            {"n": c.n, "source": c.source, "title": c.title, "chunk_id": c.chunk_id,
             "start": c.start, "end": c.end, "quote": c.quote}
            for c in answer.citations
        ],
        "retrieved": [hit_to_json(h, i + 1) for i, h in enumerate(answer.retrieved)],
        "backend": answer.backend,
        "timings_ms": {k: round(v, 1) for k, v in answer.timings_ms.items()},
        "notes": list(answer.notes),
    }
