"""Records of the answering stage: citations, answers and the events a streamed answer is made of."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from index.records import Chunk, Hit
from rag.confidence import Confidence

# What a backend writes when no source is about the question (the prompt asks for it; the verifier reads it).
# One word that no answer starts with: "NO ANSWER" was tried first, and the model wrote "No answer." to
# questions whose answer is "no".
DECLINE_MARKER = "UNANSWERABLE"


@dataclass(frozen=True)
class Turn:
    """One earlier message of a conversation."""

    role: str  # "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Question:
    """What is asked: the standalone question, plus the earlier question it leans on (if any).

    `rag.rewrite` makes it from a follow-up; `context` is what retrieval adds, never shown as the question.
    Example: Question("When did it happen?", context="Why was Altman ousted?").retrieval_text
    -> 'When did it happen? Why was Altman ousted?'
    """

    text: str
    context: str = ""

    @property
    def retrieval_text(self) -> str:
        return f"{self.text} {self.context}".strip()


class Reason(StrEnum):
    """Why an answer was declined, or what verification changed in one that was given.

    The verifier (rag/verifier.py) is the one place that decides; the UI, API, CLI and eval read these.
    """

    # declined
    NO_PASSAGES = "no_passages"  # retrieval returned nothing
    OFF_TOPIC = "off_topic"  # the best passage is less similar than RAG_MIN_RELEVANCE
    MODEL_DECLINED = "model_declined"  # the model wrote the decline marker
    MODEL_UNSURE = "model_unsure"  # its first token put more than RAG_MAX_DECLINE on the decline marker
    EMPTY_DRAFT = "empty_draft"  # the model wrote nothing usable
    UNSUPPORTED = "unsupported"  # no sentence of the draft survived the checks below
    # checks that drop a sentence
    FIGURE_NOT_IN_SOURCE = "figure_not_in_source"  # a figure of the sentence is in no retrieved passage
    NAME_NOT_IN_SOURCE = "name_not_in_source"  # a name of the sentence is in no retrieved passage
    NOT_STATED = "not_stated"  # the judge found no passage stating the sentence as an answer to the question
    ECHOES_QUESTION = "echoes_question"  # the sentence only repeats the question: nothing from a source
    # repairs on an answer that was given
    CITATION_REPAIRED = "citation_repaired"  # the cited passage did not support it; another one does
    CITATION_ADDED = "citation_added"  # the sentence cited nothing; the supporting passage is cited
    SENTENCE_DROPPED = "sentence_dropped"  # one sentence was unsupported and removed, others kept
    SECOND_DRAFT = "second_draft"  # the first draft failed; the model's most likely other reading held


DECLINE_REASONS = frozenset({Reason.NO_PASSAGES, Reason.OFF_TOPIC, Reason.MODEL_DECLINED, Reason.MODEL_UNSURE,
                             Reason.EMPTY_DRAFT, Reason.UNSUPPORTED})


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
    reasons: tuple[Reason, ...] = ()  # why it was declined, or what verification changed
    support: tuple[float, ...] = ()  # the judge's best score for each draft sentence it judged, in order
    confidence: Confidence | None = None  # the model's own token probabilities (None: backend gave none)


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
        "reasons": [r.value for r in answer.reasons],
        "support": [round(float(x), 3) for x in answer.support],
        "confidence": answer.confidence.to_json() if answer.confidence is not None else None,
    }


# --- the inverse of the two shapes above, for `rag ask` / `rag search` answered by a server (rag/remote.py)


def hit_from_json(data: dict[str, Any]) -> Hit:
    """A `Hit` from the `hit_to_json` shape; the shape has no `doc_id`, so it is left empty.

    Example: hit_from_json(hit_to_json(hit)).chunk.text == hit.chunk.text
    """
    chunk = Chunk(
        id=str(data["chunk_id"]), doc_id="", source=str(data["source"]), title=str(data.get("title", "")),
        text=str(data["text"]), start=int(data["start"]), end=int(data["end"]),
    )
    scores = {str(k): float(v) for k, v in (data.get("scores") or {}).items()}
    return Hit(chunk=chunk, score=float(data["score"]), rank=int(data.get("rank", 0)), scores=scores)


def answer_from_json(data: dict[str, Any]) -> Answer:
    """An `Answer` from the `answer_to_json` shape, so `answer_to_json(answer_from_json(d)) == d`."""
    question = str(data["question"])
    standalone = str(data.get("standalone_question") or "")
    known = {r.value for r in Reason}
    return Answer(
        question=question,
        text=str(data["answer"]),
        refused=bool(data["refused"]),
        citations=tuple(
            Citation(n=int(c["n"]), source=str(c["source"]), chunk_id=str(c["chunk_id"]),
                     start=int(c["start"]), end=int(c["end"]), quote=str(c["quote"]),
                     title=str(c.get("title", "")))
            for c in data.get("citations", [])
        ),
        retrieved=tuple(hit_from_json(h) for h in data.get("retrieved", [])),
        backend=str(data.get("backend", "")),
        timings_ms={str(k): float(v) for k, v in (data.get("timings_ms") or {}).items()},
        standalone_question="" if standalone == question else standalone,
        # a newer server may know reasons this client does not: they are left out rather than failing
        reasons=tuple(Reason(r) for r in data.get("reasons", []) if r in known),
        support=tuple(float(x) for x in data.get("support", [])),
        confidence=Confidence.from_json(data["confidence"]) if data.get("confidence") else None,
    )
