"""HTML for the chat page: answers with clickable [n] citations and the sources panel.

Pure functions over our records (no Gradio), so they are unit-tested directly. All untrusted text goes
through `ui.sanitize` (escaped, then our markup through the allow-list). Anchors are per answer,
`#rag-src-<msg>-<n>`, so an old answer's [n] finds its own passage; a small script in the page
(`ui.page_js`) shows the right panel, scrolls to it and fetches the full document on demand
(`/api/document`, paged) instead of embedding it in every card.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence

from index.records import Document, Hit
from rag.records import Citation
from ui import sanitize

CONTEXT_CHARS = 240  # characters of the document shown either side of a cited quote
_TAG = re.compile(r"<[^>]+>")
_NOTE = re.compile(r"<span class=\"rag-note[^\"]*\">.*?</span>", re.S)
DONE = '<span class="rag-note rag-done"></span>'  # marks a verified (final) answer for scripts and tests

DocLookup = Callable[[str], Document | None]


def linkify_citations(text: str, numbers: Sequence[int] | None = None, msg_id: str = "m") -> str:
    """Model text as safe HTML with [n] linked to answer `msg_id`'s source n (only known numbers).

    Example: linkify_citations("Yes [1].", [1], "m1") -> 'Yes <a class="rag-cite" href="#rag-src-m1-1" …'
    """
    return sanitize.answer(text, msg_id, set(numbers) if numbers is not None else None)


def plain_text(content: str) -> str:
    """Chat message markup back to the plain text the pipeline saw. Example: '<a>[1]</a> x' -> '[1] x'."""
    content = re.sub(r"<br\s*/?>", "\n", content)
    return html.unescape(_TAG.sub("", _NOTE.sub("", content))).strip()


def note(text: str, cls: str = "") -> str:
    """A UI-only remark appended to an answer; `plain_text` drops it again before it becomes history."""
    return f'<span class="rag-note{" " + cls if cls else ""}">{sanitize.text(text)}</span>'


def _title(hit_or_cit_title: str, source: str, doc: Document | None) -> str:
    return hit_or_cit_title or (doc.title if doc else "") or source


def _highlight(text: str, start: int, end: int, before: int, after: int) -> str:
    """`text[start:end]` in <mark>, with `before`/`after` characters of context, escaped."""
    start, end = max(0, start), min(len(text), max(start, end))
    lo, hi = max(0, start - before), min(len(text), end + after)
    return (
        ("…" if lo > 0 else "")
        + sanitize.text(text[lo:start])
        + f"<mark>{sanitize.text(text[start:end])}</mark>"
        + sanitize.text(text[end:hi])
        + ("…" if hi < len(text) else "")
    )


def _window(text: str, limit: int = 2 * CONTEXT_CHARS + 400) -> str:
    """At most `limit` characters of a passage: cards carry a window, never a whole document."""
    return sanitize.text(text[:limit]) + ("…" if len(text) > limit else "")


def _span_in_doc(doc: Document | None, start: int, end: int, quote: str) -> tuple[int, int] | None:
    """Where the quote sits in the document: trust the offsets when they match, else search."""
    if doc is None:
        return None
    if 0 <= start < end <= len(doc.text) and (not quote or doc.text[start:end].strip() == quote.strip()):
        return start, end
    if quote:
        at = doc.text.find(quote.strip())
        if at >= 0:
            return at, at + len(quote.strip())
    if 0 <= start < end <= len(doc.text):
        return start, end
    return None


def _full_document(source: str, start: int, end: int) -> str:
    """A fold that the page script fills from /api/document (paged) when it is opened."""
    return (
        f'<details class="rag-full" data-source="{html.escape(source, quote=True)}" '
        f'data-start="{int(start)}" data-end="{int(end)}">'
        '<summary>Read it in the full document</summary><div class="rag-doc" dir="auto"></div></details>'
    )


def _card(
    anchor: str | None, n: int | None, title: str, source: str, excerpt: str, full: str, extra: str = ""
) -> str:
    num = f'<span class="rag-n">{n}</span>' if n is not None else ""
    ident = f' id="{anchor}"' if anchor else ""
    return (
        f'<div class="rag-src {extra}"{ident}>'
        f'<div class="rag-src-head">{num}<span class="rag-title" dir="auto">{sanitize.text(title)}</span>'
        f'<span class="rag-file">{sanitize.text(source)}</span></div>'
        f'<blockquote class="rag-quote" dir="auto">{excerpt}</blockquote>{full}</div>'
    )


def citation_card(c: Citation, lookup: DocLookup, hits: Sequence[Hit] = (), msg_id: str = "m") -> str:
    """A cited passage: the quote highlighted in a window of its text, and the full document on demand."""
    doc = lookup(c.source)
    span = _span_in_doc(doc, c.start, c.end, c.quote)
    hit_title = next((h.chunk.title for h in hits if h.chunk.id == c.chunk_id), "")
    title = _title(c.title or hit_title, c.source, doc)
    if doc is not None and span is not None:
        excerpt = _highlight(doc.text, span[0], span[1], CONTEXT_CHARS, CONTEXT_CHARS)
        full = _full_document(c.source, *span)
    else:  # document not readable: show the quote inside its chunk if we still have it
        chunk = next((h.chunk.text for h in hits if h.chunk.id == c.chunk_id), "")
        at = chunk.find(c.quote) if c.quote else -1
        excerpt = (
            _highlight(chunk, at, at + len(c.quote), CONTEXT_CHARS, CONTEXT_CHARS)
            if at >= 0
            else f"<mark>{sanitize.text(c.quote)}</mark>"
        )
        full = ""
    return _card(f"rag-src-{_mid(msg_id)}-{c.n}", c.n, title, c.source, excerpt, full, "rag-cited")


def hit_card(hit: Hit, n: int | None, lookup: DocLookup, with_full: bool = True) -> str:
    """A retrieved passage (not verified as support): a window of its text, the full document on demand."""
    ch = hit.chunk
    doc = lookup(ch.source) if with_full else None
    full = ""
    if doc is not None and 0 <= ch.start < ch.end <= len(doc.text):
        full = _full_document(ch.source, ch.start, ch.end)
    return _card(None, n, _title(ch.title, ch.source, doc), ch.source, _window(ch.text), full)


def _mid(msg_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "", msg_id)


def _panel(heading: str, body: str, status: str = "", msg_id: str = "") -> str:
    st = f'<p class="rag-status">{sanitize.text(status)}</p>' if status else ""
    data = f' data-msg="{_mid(msg_id)}"' if msg_id else ""
    back = '<a class="rag-back" href="#rag-chat">↑ Back to the chat</a>'
    return sanitize.clean(
        f'<div class="rag-sources"{data}><h3>{sanitize.text(heading)}</h3>{st}{body}{back}</div>'
    )


def empty_panel() -> str:
    return _panel("Sources", "", "Ask a question: the passages behind the answer appear here.")


def retrieved_panel(hits: Sequence[Hit], lookup: DocLookup, msg_id: str = "") -> str:
    """Shown as soon as retrieval is done, while the model is still writing."""
    if not hits:
        return _panel("Sources", "", "No passages matched the question.", msg_id)
    # Unnumbered: the draft's [n] follow the prompt's order, only the verified answer's numbers are linked.
    cards = "".join(hit_card(h, None, lookup, with_full=False) for h in hits)
    status = f"{len(hits)} passages found; the answer is being written…"
    return _panel("Retrieved passages", cards, status, msg_id)


def answer_panel(
    citations: Sequence[Citation], hits: Sequence[Hit], lookup: DocLookup, msg_id: str = "m"
) -> str:
    """After the verified answer: the cited passages first, the other retrieved ones folded away."""
    cited = sorted({c.n: c for c in citations}.values(), key=lambda c: c.n)
    cited_chunks = {c.chunk_id for c in cited}
    body = "".join(citation_card(c, lookup, hits, msg_id) for c in cited)
    rest = [h for h in hits if h.chunk.id not in cited_chunks]
    if rest:
        others = "".join(hit_card(h, None, lookup) for h in rest)
        summary = f"<summary>{len(rest)} more retrieved passages</summary>"
        body += f'<details class="rag-others">{summary}{others}</details>'
    status = "" if cited else "The answer cites no passage."
    return _panel("Sources", body, status, msg_id)


def refused_panel(hits: Sequence[Hit], lookup: DocLookup, msg_id: str = "") -> str:
    """A declined question: the closest passages, so the user sees what the documents do say."""
    if not hits:
        return _panel("Closest passages", "", "Nothing in the documents came close to this question.", msg_id)
    cards = "".join(hit_card(h, None, lookup) for h in hits)
    return _panel("Closest passages", cards, "The documents do not answer this; these came closest.", msg_id)


def error_panel(msg_id: str = "") -> str:
    return _panel("Sources", "", "No sources: the question could not be answered.", msg_id)
