"""The one object the CLI, the UI, the HTTP API and the eval harness drive: question in, verified answer out.

`Pipeline.stream()` validates the question, rewrites a follow-up into a standalone `Question`, retrieves,
yields `Sources` at once (before any generation), streams the backend's draft as `Token`s and ends with one
`Final` whose answer the verifier (rag/verifier.py, the one place that decides) has checked: declined with
typed reasons, or answered with every sentence cited to a passage that states it. Generators and judges are
built lazily, once per backend name.
Not covered: indexing (index/), presentation (rag/cmd_ask.py, ui/).
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from index.errors import QueryError
from index.records import Document, Hit
from rag.confidence import Confidence, TokenLog, alternative_prefix, confidence
from rag.config import Config
from rag.generators import GENERATORS, GenerationRequest, Generator, build_generator
from rag.grounding import Grounder
from rag.judge import build_judge
from rag.prompt import build_prompt
from rag.records import (
    DECLINE_MARKER,
    DECLINE_REASONS,
    Answer,
    Event,
    Final,
    Question,
    Reason,
    Sources,
    Token,
    Turn,
)
from rag.rewrite import standalone_question
from rag.verifier import Decision, Verifier

ANSWER_TOKENS = 120  # one or two sentences with citations fit easily
MAX_SENTENCES = 2  # stop the model once the draft has this many complete sentences (the prompt asks for 1)
PRECOMPUTE_CHUNKS = 2000  # warm_up embeds all chunk sentences when the index is at most this big
STOP = ("\nQuestion:", "\nSource [", "\n\n\n")


class Pipeline:
    """Retrieve → prompt → generate → verify. Thread-safe; one generation at a time per local model."""

    def __init__(
        self, config: Config, retriever: Any, generators: dict[str, Generator] | None = None
    ) -> None:
        self.config = config
        self.retriever = retriever
        self._generators: dict[str, Generator] = dict(generators or {})
        self._verifiers: dict[str, Verifier] = {}
        self._lock = threading.Lock()
        self.grounder = Grounder(getattr(retriever, "embedder", None))

    # --- lookups -------------------------------------------------------------------------------------
    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """The retriever's hits for `query` (validated like a question)."""
        return list(self.retriever.search(self._validate(query), self._k(k)))

    def document(self, source: str) -> Document | None:
        return self.retriever.store.document(source)

    def generator(self, backend: str | None = None) -> Generator:
        """The backend called `backend` (default: config.backend), built on first use."""
        name = backend or self.config.backend
        with self._lock:
            if name not in self._generators:
                self._generators[name] = build_generator(name, self.config)
            return self._generators[name]

    def verifier(self, backend: str | None = None) -> Verifier:
        """The verifier for answers from `backend` (judged by the local model when that backend runs it)."""
        name = backend or self.config.backend
        with self._lock:
            if name not in self._verifiers:
                judge = build_judge(self.config, name)
                local = judge.name == "local"
                threshold = self.config.min_support if local else self.config.min_lexical_support
                self._verifiers[name] = Verifier(judge, self.grounder, min_support=threshold,
                                                 min_relevance=self.config.min_relevance,
                                                 max_decline=self.config.max_decline)
            return self._verifiers[name]

    def warm_up(self, backend: str | None = None) -> None:
        """Load the model (and the embedder) ahead of the first question."""
        generator = self.generator(backend)
        warm = getattr(generator, "warm_up", None)
        if callable(warm):
            warm()
        prime = getattr(generator, "prime", None)  # local models: cache the fixed part of every prompt
        if callable(prime):
            prime(build_prompt(Question("warm up"), (), self.grounder).messages)
        judge_warm = getattr(self.verifier(backend).judge, "warm_up", None)
        if callable(judge_warm):
            judge_warm()
        if self.grounder.embedder is not None:
            chunks = getattr(self.retriever.store, "chunks", ())
            if len(chunks) <= PRECOMPUTE_CHUNKS:  # small corpora: embed every sentence once, up front
                self.grounder.vectors([Hit(chunk=c, score=0.0) for c in list(chunks)])
            else:
                self.grounder.embed(["warm up"])

    def health(self) -> dict[str, Any]:
        store = self.retriever.store
        generator = self._generators.get(self.config.backend)
        embedder = getattr(self.retriever, "embedder", None)
        return {
            "index_loaded": True,
            "documents": len(store.documents),
            "chunks": len(store.chunks),
            "embed_model": getattr(embedder, "name", self.config.embed_model),
            "backend": self.config.backend,
            "model_ready": bool(getattr(generator, "ready", False)) if generator is not None else False,
            "backends": list(GENERATORS),
        }

    # --- answering -----------------------------------------------------------------------------------
    def ask(self, question: str, history: Sequence[Turn] = (), k: int | None = None,
            backend: str | None = None) -> Answer:
        """The verified answer (drains `stream`)."""
        final: Answer | None = None
        for event in self.stream(question, history, k, backend):
            if isinstance(event, Final):
                final = event.answer
        assert final is not None
        return final

    def stream(self, question: str, history: Sequence[Turn] = (), k: int | None = None,
               backend: str | None = None, cancelled: threading.Event | None = None) -> Iterator[Event]:
        """Yield `Sources`, then the draft as `Token`s, then one `Final` with the verified answer.

        Raises QueryError for an empty or over-long question, BackendError when the backend fails. Setting
        `cancelled` (from any thread) stops the backend even before its first token; the stream then ends
        without a `Final`, since nobody is waiting for it.
        """
        started = time.perf_counter()
        question = self._validate(question)
        name = backend or self.config.backend
        generator = self.generator(name)  # unknown backend fails before any work
        verifier = self.verifier(name)
        turns = tuple(history)[-2 * self.config.max_history_turns :]
        asked = standalone_question(question, turns)
        hits = tuple(self.retriever.search(asked.retrieval_text, self._k(k)))
        timings = {"retrieve": _ms(started)}
        rewritten = asked.text if asked.text != question or asked.context else ""
        yield Sources(hits, rewritten)

        def final(decision: Decision, first_token: float | None, reasons: tuple[Reason, ...] = (),
                  confidence: Confidence | None = None) -> Final:
            timings["first_token"] = first_token if first_token is not None else _ms(started)
            timings["total"] = _ms(started)
            return Final(Answer(
                question=question, text=decision.text, refused=not decision.answered,
                citations=decision.citations, retrieved=hits, backend=name, timings_ms=dict(timings),
                standalone_question=rewritten, reasons=decision.reasons + reasons, support=decision.support,
                confidence=confidence,
            ))

        screened = verifier.screen(hits)
        if screened is not None:
            yield Token(screened.text)
            yield final(screened, _ms(started))
            return

        prompt = build_prompt(asked, hits, self.grounder, max_passages=self.config.prompt_passages,
                              budget_chars=self.config.prompt_chars, decline=DECLINE_MARKER)
        numbered = prompt.passages + tuple(h for h in hits if h not in prompt.passages)
        request = GenerationRequest(
            messages=prompt.messages, question=asked.text, passages=numbered,
            max_tokens=min(self.config.max_tokens, ANSWER_TOKENS), temperature=self.config.temperature,
            stop=STOP, extras={"grounder": self.grounder, "context": asked.context}, cancelled=cancelled,
            token_log=TokenLog(),
        )
        draft: list[str] = []
        first_token: float | None = None
        pieces = generator.stream(request)
        try:
            for piece in pieces:
                if first_token is None:
                    first_token = _ms(started)
                draft.append(piece)
                yield Token(piece)
                if _complete_sentences("".join(draft)) >= MAX_SENTENCES:
                    break
        finally:
            close = getattr(pieces, "close", None)
            if callable(close):
                close()  # stops a local model mid-generation
        if request.is_cancelled():
            return  # no verification: the judge would hold the model for an answer nobody reads
        timings["generate"] = _ms(started) - timings["retrieve"]
        checked = time.perf_counter()
        assert request.token_log is not None
        tokens = request.token_log.tokens
        sure = confidence(tokens, DECLINE_MARKER)
        decision = verifier.decide("".join(draft), asked, numbered, sure)
        if self.config.second_draft and _worth_a_second_draft(decision):
            second = self._second_draft(generator, request, alternative_prefix(tokens, DECLINE_MARKER))
            if second and not request.is_cancelled():
                retry = verifier.decide(second, asked, numbered, min_support=self.config.second_min_support)
                if retry.answered:
                    decision = dataclasses.replace(retry, reasons=(Reason.SECOND_DRAFT, *retry.reasons))
                else:
                    decision = dataclasses.replace(decision, support=decision.support + retry.support)
        if request.is_cancelled():
            return
        timings["verify"] = _ms(checked)
        yield final(decision, first_token, confidence=sure)

    def _second_draft(self, generator: Generator, request: GenerationRequest, prefix: str | None) -> str:
        """The draft the model writes when its answer opens with `prefix` (its own most likely other reading),
        continued from the cached prompt: a few tokens, not a second prompt. "" when there is no prefix."""
        if not prefix:
            return ""
        follow = dataclasses.replace(
            request, messages=(*request.messages, {"role": "assistant", "content": prefix}), token_log=None)
        text = prefix
        pieces = generator.stream(follow)
        try:
            for piece in pieces:
                text += piece
                if _complete_sentences(text) >= MAX_SENTENCES or request.is_cancelled():
                    break
        finally:
            close = getattr(pieces, "close", None)
            if callable(close):
                close()
        return text

    # --- helpers -------------------------------------------------------------------------------------
    def _validate(self, question: str) -> str:
        text = (question or "").strip()
        if not text:
            raise QueryError("Ask a question: the question is empty.")
        if len(text) > self.config.max_question_chars:
            raise QueryError(
                f"The question is {len(text)} characters long; the limit is {self.config.max_question_chars} "
                "(RAG_MAX_QUESTION_CHARS). Shorten it."
            )
        return text

    def _k(self, k: int | None) -> int:
        return max(1, min(int(k if k is not None else self.config.k), 50))


_NOT_RETRIED = DECLINE_REASONS - {Reason.UNSUPPORTED}  # declined before any sentence was checked


def _worth_a_second_draft(decision: Decision) -> bool:
    """A draft the verifier rejected for what it said (not one the model or retrieval declined)."""
    return not decision.answered and not (set(decision.reasons) & _NOT_RETRIED)


def _complete_sentences(text: str) -> int:
    return len(re.findall(r"[.!?](?:\s*\[\d[\d,\s]*\])*(?:\s|$)", text.strip() + " "))


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


def build_pipeline(config: Config) -> Pipeline:
    """Open the index and return a ready Pipeline; raises IndexMissingError etc. naming the fix."""
    from rag.retriever import open_retriever

    return Pipeline(config, open_retriever(config))
