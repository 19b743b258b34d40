"""The chat handler, free of Gradio: turns `Pipeline.stream` events into chat-page updates.

`ChatHandler.respond(message, history)` yields `ChatUpdate`s: the message list to show, the sources
panel HTML (None = unchanged, so streamed tokens do not resend it) and, at the end, the answer record
that a thumbs up/down refers to. `ui.app` only adapts this to Gradio components.
Errors never escape: a `RagError` becomes its own message, anything else a generic apology (logged).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from index.records import Document, Hit
from rag.errors import QueryError, RagError
from rag.records import Answer, Event, Final, Sources, Token, Turn, answer_to_json
from ui import render, sanitize
from ui.conversation import DONE, ERROR, RUNNING, Exchange
from ui.gate import TIMED_OUT, Cancelled, GenerationGate, GenerationTimeout, gated_stream

log = logging.getLogger("ui.chat")

THINKING = "_Searching the documents…_"
WRITING = "_Found {n} passages; writing the answer…_"
QUEUED = "_Found {n} passages; waiting for a free slot (others are being answered)…_"
CURSOR = " ▍"
ERROR_PREFIX = "⚠️ "
GENERIC_ERROR = "Sorry, something went wrong while answering. It has been logged; please try again."


class Deadline:
    """The total time one chat answer may take, waiting for a slot included (RAG_GENERATION_TIMEOUT).

    At the deadline it sets `cancel`, the flag the pipeline's stream watches, so a backend that has gone
    silent stops too (the API does the same in ui.runs). `expired` tells a timeout from a Stop.
    Example: with Deadline(120.0, ex.cancelled) as d: ... d.at (monotonic) or None for no limit
    """

    def __init__(self, seconds: float, cancel: threading.Event) -> None:
        self.at = time.monotonic() + seconds if seconds > 0 else None
        self.expired = False
        self._cancel = cancel
        self._timer = threading.Timer(seconds, self._fire) if seconds > 0 else None
        if self._timer is not None:
            self._timer.daemon = True

    def _fire(self) -> None:
        self.expired = True
        self._cancel.set()

    def __enter__(self) -> Deadline:
        if self._timer is not None:
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()


class PipelineLike(Protocol):
    """The part of `rag.pipeline.Pipeline` the UI drives (fakes in tests satisfy it too)."""

    config: Any

    def stream(
        self,
        question: str,
        history: Sequence[Turn] = (),
        k: int | None = None,
        backend: str | None = None,
        cancelled: threading.Event | None = None,
    ) -> Iterator[Event]: ...

    def search(self, query: str, k: int | None = None) -> list[Hit]: ...

    def document(self, source: str) -> Document | None: ...

    def health(self) -> dict[str, Any]: ...


@dataclass
class ChatUpdate:
    messages: list[dict[str, Any]]
    sources_html: str | None = None  # None: leave the panel as it is
    record: dict[str, Any] | None = None  # set on the final update of a successful answer
    done: bool = False


def message_text(content: Any) -> str:
    """Text of a chat message in any Gradio shape (str, {"text"}, [{"type": "text", "text"}])."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    if isinstance(content, list | tuple):
        return "\n".join(message_text(c) for c in content)
    return ""


def history_to_turns(history: Sequence[dict[str, Any]], max_turns: int) -> list[Turn]:
    """Earlier chat messages as pipeline history: plain text, errors and UI notes dropped."""
    turns: list[Turn] = []
    for m in history:
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("user", "assistant") or (
            isinstance(m, dict) and (m.get("metadata") or {}).get("title")
        ):
            continue
        text = render.plain_text(message_text(m.get("content")))
        if not text or (role == "assistant" and text.startswith((ERROR_PREFIX.strip(), "_"))):
            continue  # errors and placeholders are not part of the conversation
        turns.append(Turn(role=role, content=text))
    return turns[-2 * max_turns :] if max_turns > 0 else []


def format_answer(answer: Answer, msg_id: str = "m") -> str:
    """The verified answer as chat markup; a refusal says so and points at the closest passages."""
    text = answer.text.strip() or "I could not find an answer to that in the documents."
    if answer.refused:
        body = render.linkify_citations(text, [], msg_id)
        if "closest passages" not in text.lower():
            body += "<br><br>" + render.note("The closest passages are shown under Sources.")
        return body + render.DONE
    return render.linkify_citations(text, [c.n for c in answer.citations], msg_id) + render.DONE


def final_html(answer: Answer, msg_id: str, vote: str = "") -> str:
    """The chat bubble of a verified answer: the text, its source list, Copy and the vote controls."""
    text = answer.text.strip() or "I could not find an answer to that in the documents."
    numbers = [] if answer.refused else [c.n for c in answer.citations]
    body = f'<div class="rag-answer" dir="auto">{render.linkify_citations(text, numbers, msg_id)}</div>'
    if answer.refused and "closest passages" not in text.lower():
        body += render.note("The closest passages are shown under Sources.")
    cited = sorted({c.n: c for c in answer.citations}.values(), key=lambda c: c.n)
    if cited and not answer.refused:
        items = "".join(
            f'<li data-n="{c.n}">[{c.n}] {sanitize.text(c.title or c.source)} '
            f'<span class="rag-file">({sanitize.text(c.source)})</span></li>'
            for c in cited
        )
        body += f'<ol class="rag-srclist" aria-label="Sources">{items}</ol>'
    if vote:
        votes = f'<span class="rag-voted">Thanks, your vote ({vote}) was recorded.</span>'
    else:
        votes = (
            f'<a class="rag-vote" role="button" href="#rag-vote-{msg_id}-up" data-vote="up" '
            'title="Good answer" aria-label="Good answer">▲ Helpful</a>'
            f'<a class="rag-vote" role="button" href="#rag-vote-{msg_id}-down" data-vote="down" '
            'title="Bad answer" aria-label="Bad answer">▼ Not helpful</a>'
        )
    tools = (
        f'<div class="rag-tools"><a class="rag-copy" role="button" href="#rag-copy-{msg_id}">Copy</a>'
        f"{votes}</div>"
    )
    return sanitize.clean(body + tools + render.DONE)


def draft_html(draft: str) -> str:
    """The unverified stream, visibly a draft: greyed, labelled, replaced in place by the final answer."""
    return sanitize.clean(
        '<div class="rag-draft"><span class="rag-note rag-checking">Draft, checking sources…</span>'
        f'<div class="rag-draft-text" dir="auto">{sanitize.multiline(draft)}{CURSOR}</div></div>'
    )


def note_html(text: str) -> str:
    return sanitize.clean(render.note(text))


def answer_record(answer: Answer) -> dict[str, Any]:
    """What a vote on this answer stores next to it."""
    data = answer_to_json(answer)
    return {k: data[k] for k in ("question", "answer", "refused", "citations", "backend")}


class ChatHandler:
    """Drives the pipeline for one chat message at a time; safe to share between sessions."""

    def __init__(self, pipeline: PipelineLike, gate: GenerationGate | None = None) -> None:
        self.pipeline = pipeline
        cfg = pipeline.config
        self.gate = gate or GenerationGate(getattr(cfg, "concurrency", 1))
        self.max_chars = int(getattr(cfg, "max_question_chars", 2000))
        self.max_turns = int(getattr(cfg, "max_history_turns", 6))
        self.timeout = float(getattr(cfg, "generation_timeout", 120.0) or 0)  # per answer, queue included

    def _lookup(self, source: str) -> Document | None:
        try:
            return self.pipeline.document(source)
        except Exception:  # a missing document must not break the answer
            log.exception("document(%r) failed", source)
            return None

    def check(self, question: str) -> None:
        """Refuse empty and over-long questions before any work, with the message to show."""
        if not question.strip():
            raise QueryError("Please type a question first.")
        if len(question) > self.max_chars:
            raise QueryError(
                f"That question is {len(question):,} characters long; the limit is {self.max_chars:,}. "
                "Please shorten it."
            )

    def respond(
        self, message: str, history: Sequence[dict[str, Any]] | None = None, backend: str | None = None
    ) -> Iterator[ChatUpdate]:
        history = list(history or [])
        question = message_text(message)
        turns = history_to_turns(history, self.max_turns)
        msgs = history + [{"role": "user", "content": question}]
        assistant: dict[str, Any] = {"role": "assistant", "content": THINKING}
        msgs.append(assistant)
        try:
            self.check(question)
            yield ChatUpdate(_snap(msgs))
            yield from self._answer(question, turns, backend, msgs, assistant)
        except RagError as err:
            assistant["content"] = ERROR_PREFIX + str(err)
            yield ChatUpdate(_snap(msgs), render.error_panel(), done=True)
        except Exception:
            log.exception("chat answer failed for %r", question[:200])
            assistant["content"] = ERROR_PREFIX + GENERIC_ERROR
            yield ChatUpdate(_snap(msgs), render.error_panel(), done=True)

    def _answer(
        self,
        question: str,
        turns: list[Turn],
        backend: str | None,
        msgs: list[dict[str, Any]],
        assistant: dict,
    ) -> Iterator[ChatUpdate]:
        # Retrieval (and the deterministic follow-up rewrite) runs outside the gate, so sources show at
        # once even when every generation slot is busy.
        cancel = threading.Event()
        with Deadline(self.timeout, cancel) as deadline:
            events = self.pipeline.stream(question, history=turns, backend=backend, cancelled=cancel)
            try:
                finished = yield from self._updates(events, deadline, cancel, backend, msgs, assistant)
            except Cancelled:  # only the deadline cancels this path: there is no Stop button on the API
                finished = False
            if finished:
                return
            if deadline.expired:
                raise GenerationTimeout()
        raise RuntimeError("the pipeline stream ended without a Final event")

    def _updates(
        self,
        events: Iterator[Event],
        deadline: Deadline,
        cancel: threading.Event,
        backend: str | None,
        msgs: list[dict[str, Any]],
        assistant: dict,
    ) -> Generator[ChatUpdate, None, bool]:
        """The updates of one answer; True once its Final was shown, False when the stream ended early."""
        hits: tuple[Hit, ...] = ()
        draft = ""
        for ev in gated_stream(self.gate, events, backend=backend, deadline=deadline.at, cancelled=cancel):
            if deadline.expired:
                raise GenerationTimeout()
            if isinstance(ev, Sources):
                hits = ev.hits
                assistant["content"] = (QUEUED if self.gate.busy() else WRITING).format(n=len(hits))
                yield ChatUpdate(_snap(msgs), render.retrieved_panel(hits, self._lookup))
            elif isinstance(ev, Token):
                draft += ev.text
                assistant["content"] = draft + CURSOR
                yield ChatUpdate(_snap(msgs))
            elif isinstance(ev, Final):
                ans = ev.answer
                hits = ans.retrieved or hits
                assistant["content"] = format_answer(ans)
                panel = (
                    render.refused_panel(hits, self._lookup)
                    if ans.refused
                    else render.answer_panel(ans.citations, hits, self._lookup)
                )
                yield ChatUpdate(_snap(msgs), panel, record=answer_record(ans), done=True)
                return True
        return False

    def run(
        self, ex: Exchange, turns: list[Turn], backend: str | None = None
    ) -> Generator[str | None, None, None]:
        """Answer `ex` in place (its html, panel, record, status); yields after each visible change,
        the new sources panel or None. Stops at once when `ex` is no longer running (Stop, Clear):
        closing the pipeline stream stops the model."""
        ex.html = note_html(THINKING.strip("_"))
        yield None
        events: Iterator[Event] | None = None
        deadline = Deadline(self.timeout, ex.cancelled)
        try:
            self.check(ex.question)
            deadline.__enter__()
            # Stop (ex.cancelled) also ends the wait for a slot: a stopped question gives its place back
            events = gated_stream(
                self.gate,
                self.pipeline.stream(ex.question, history=turns, backend=backend, cancelled=ex.cancelled),
                backend=backend,
                deadline=deadline.at,
                cancelled=ex.cancelled,
            )
            hits: tuple[Hit, ...] = ()
            draft = ""
            for ev in events:
                if deadline.expired:
                    raise GenerationTimeout()
                if ex.status != RUNNING:
                    return
                if isinstance(ev, Sources):
                    hits = ev.hits
                    ex.html = note_html(
                        (QUEUED if self.gate.busy() else WRITING).strip("_").format(n=len(hits))
                    )
                    ex.panel = render.retrieved_panel(hits, self._lookup, ex.id)
                    yield ex.panel
                elif isinstance(ev, Token):
                    draft += ev.text
                    ex.html = draft_html(draft)
                    yield None
                elif isinstance(ev, Final):
                    ans = ev.answer
                    hits = ans.retrieved or hits
                    ex.record = answer_record(ans)
                    ex.answer = ans.text.strip()
                    ex.html = final_html(ans, ex.id)
                    ex.panel = (
                        render.refused_panel(hits, self._lookup, ex.id)
                        if ans.refused
                        else render.answer_panel(ans.citations, hits, self._lookup, ex.id)
                    )
                    ex.status = DONE
                    yield ex.panel
                    return
            if deadline.expired:
                raise GenerationTimeout()
            if ex.status != RUNNING:
                return  # stopped: the stream ended without a Final, as asked
            raise RuntimeError("the pipeline stream ended without a Final event")
        except Cancelled:
            if deadline.expired:  # the deadline passed while waiting for a slot
                self._fail(ex, ERROR_PREFIX + TIMED_OUT)
                yield ex.panel
        except RagError as err:
            self._fail(ex, ERROR_PREFIX + str(err))
            yield ex.panel
        except Exception:
            log.exception("chat answer failed for %r", ex.question[:200])
            self._fail(ex, ERROR_PREFIX + GENERIC_ERROR)
            yield ex.panel
        finally:
            deadline.__exit__()
            if events is not None:
                events.close()  # type: ignore[attr-defined]

    def _fail(self, ex: Exchange, message: str) -> None:
        if ex.status == RUNNING:
            ex.status = ERROR
            ex.html = sanitize.clean(f'<span class="rag-error">{sanitize.text(message)}</span>')
            ex.panel = render.error_panel(ex.id)


def _snap(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy per update: Gradio diffs successive values, so they must not be the same mutated list."""
    return [dict(m) for m in msgs]
