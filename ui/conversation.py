"""One browser tab's conversation: questions in order, each with its own answer, sources and status.

The page shows `Conversation.messages()`; questions are queued the moment they are sent and answered in
order by one worker per conversation (`take_next`), so none is dropped or hidden. Each `Exchange`
keeps its own sources panel, so an old answer's [n] shows that answer's passage. Gradio-free, so the
page logic is unit-tested directly. `dump`/`load` round-trip it through the browser's storage.
Leaves out answering (`ui.chat`) and wiring (`ui.app`).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, fields
from typing import Any

from rag.records import Turn
from ui import sanitize

QUEUED, RUNNING, DONE, STOPPED, ERROR = "queued", "running", "done", "stopped", "error"
STATUSES = {QUEUED, RUNNING, DONE, STOPPED, ERROR}


def new_id() -> str:
    return uuid.uuid4().hex[:10]


@dataclass
class Exchange:
    """A question and its answer as shown: `html` is the assistant bubble (built by `ui.chat`)."""

    question: str
    id: str = field(default_factory=new_id)
    status: str = QUEUED
    html: str = ""
    answer: str = ""  # the verified answer's plain text (history, export)
    panel: str = ""  # this answer's sources panel
    record: dict[str, Any] | None = None  # final answer + citations, for votes and export
    vote: str = ""
    # Set by Stop and Clear. The worker passes it down to the model, which sees it between prompt batches:
    # waiting for the worker's next step would hold the model until its first token (many seconds).
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)


def _stored(ex: Exchange) -> dict[str, Any]:
    """The fields the browser keeps (not the cancel flag, which lives only while the answer runs)."""
    return {f.name: getattr(ex, f.name) for f in fields(ex) if f.name != "cancelled"}


class Conversation:
    """Thread-safe: the page's events (send, stop, clear, vote) and the answering worker share it."""

    def __init__(self, conv_id: str | None = None, title: str = "") -> None:
        self.id = conv_id or new_id()
        self.title = title
        self.exchanges: list[Exchange] = []
        self.lock = threading.RLock()
        self.worker = False  # a worker is answering this conversation's queue

    def add(self, question: str) -> Exchange:
        with self.lock:
            ex = Exchange(question=question)
            self.exchanges.append(ex)
            if not self.title:
                self.title = question.strip()[:60]
            return ex

    def find(self, ex_id: str) -> Exchange | None:
        with self.lock:
            return next((e for e in self.exchanges if e.id == ex_id), None)

    def running(self) -> Exchange | None:
        with self.lock:
            return next((e for e in self.exchanges if e.status == RUNNING), None)

    def busy(self) -> bool:
        with self.lock:
            return any(e.status in (QUEUED, RUNNING) for e in self.exchanges)

    def claim_worker(self) -> bool:
        """True for the one caller that should answer the queue now (others return at once)."""
        with self.lock:
            if self.worker:
                return False
            self.worker = True
            return True

    def take_next(self) -> Exchange | None:
        """The oldest queued question, now running; None (and the worker released) when none is left."""
        with self.lock:
            ex = next((e for e in self.exchanges if e.status == QUEUED), None)
            if ex is None:
                self.worker = False
                return None
            ex.status = RUNNING
            return ex

    def release_worker(self) -> None:
        with self.lock:
            self.worker = False

    def stop(self, note_html: str) -> Exchange | None:
        """Stop the running answer (the worker notices at its next step); queued ones go on."""
        with self.lock:
            ex = self.running()
            if ex is not None:
                ex.status = STOPPED
                ex.html = note_html
                ex.cancelled.set()
            return ex

    def clear(self) -> None:
        """Forget everything, the running answer and the queue included (the worker stops)."""
        with self.lock:
            for e in self.exchanges:
                if e.status in (QUEUED, RUNNING):
                    e.status = STOPPED
                    e.cancelled.set()
            self.exchanges = []
            self.title = ""

    def history_before(self, ex: Exchange, max_turns: int) -> list[Turn]:
        """Answered exchanges before `ex` as pipeline history (plain text only)."""
        turns: list[Turn] = []
        with self.lock:
            for e in self.exchanges:
                if e is ex:
                    break
                if e.status == DONE and e.answer:
                    turns += [Turn("user", e.question), Turn("assistant", e.answer)]
        return turns[-2 * max_turns :] if max_turns > 0 else []

    def messages(self) -> list[dict[str, Any]]:
        """The chat component's value: a user and an assistant message per exchange."""
        out: list[dict[str, Any]] = []
        with self.lock:
            queued = [e for e in self.exchanges if e.status == QUEUED]
            ahead = 1 if self.running() is not None else 0
            for e in self.exchanges:
                out.append({"role": "user", "content": sanitize.clean(sanitize.multiline(e.question))})
                html = e.html
                if e.status == QUEUED:
                    pos = queued.index(e) + 1 + ahead
                    html = (
                        f'<span class="rag-note rag-queued" data-pos="{pos}">Queued: number {pos} in line; '
                        "it is answered after the questions above.</span>"
                    )
                out.append({"role": "assistant", "content": html})
        return out

    def dump(self) -> dict[str, Any]:
        """A JSON-able copy for the browser's storage; unfinished answers are kept as questions only."""
        with self.lock:
            items = [_stored(e) for e in self.exchanges if e.status in (DONE, STOPPED, ERROR)]
            return {"id": self.id, "title": self.title, "exchanges": items}

    @classmethod
    def load(cls, data: dict[str, Any]) -> Conversation:
        """The inverse of `dump`; unknown or malformed entries are skipped (storage is the user's)."""
        conv = cls(str(data.get("id") or new_id()), str(data.get("title") or ""))
        for item in data.get("exchanges") or []:
            if not isinstance(item, dict) or not isinstance(item.get("question"), str):
                continue
            status = item.get("status") if item.get("status") in (DONE, STOPPED, ERROR) else STOPPED
            conv.exchanges.append(
                Exchange(
                    question=item["question"],
                    id=str(item.get("id") or new_id()),
                    status=str(status),
                    # stored markup came from the browser: pass it through the allow-list again
                    html=sanitize.clean(str(item.get("html") or "")),
                    answer=str(item.get("answer") or ""),
                    panel=sanitize.clean(str(item.get("panel") or "")),
                    record=item.get("record") if isinstance(item.get("record"), dict) else None,
                    vote=str(item.get("vote") or ""),
                )
            )
        return conv


class Sessions:
    """The conversation of each open browser tab, by Gradio session; the oldest go past `limit`."""

    def __init__(self, limit: int = 500) -> None:
        self.limit = limit
        self._by_key: dict[str, Conversation] = {}
        self._lock = threading.Lock()

    def get(self, key: str | None) -> Conversation:
        with self._lock:
            k = key or ""
            conv = self._by_key.get(k)
            if conv is None:
                conv = self._by_key[k] = Conversation()
                while len(self._by_key) > self.limit:  # dicts keep insertion order: drop the oldest
                    self._by_key.pop(next(iter(self._by_key)))
            return conv

    def put(self, key: str | None, conv: Conversation) -> Conversation:
        with self._lock:
            old = self._by_key.get(key or "")
            if old is not None:
                old.clear()  # a replaced conversation's worker stops
            self._by_key[key or ""] = conv
            return conv

    def drop(self, key: str | None) -> None:
        with self._lock:
            conv = self._by_key.pop(key or "", None)
        if conv is not None:
            conv.clear()


def take_back_last(conv: Conversation) -> Exchange | None:
    """Remove and return the last finished exchange (for regenerate / edit); None while answering."""
    with conv.lock:
        if conv.busy() or not conv.exchanges:
            return None
        return conv.exchanges.pop()
