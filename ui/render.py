"""HTML for the chat page: answers with clickable [n] citations and the sources panel.

Pure functions over our records (no Gradio), so they are unit-tested directly. Every piece of
document text is HTML-escaped; the only markup is ours. Anchors are `#rag-src-<n>`; a small script in
the page (`ui.app.PAGE_HEAD`) scrolls to them and opens the full-document view.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence

from index.records import Document, Hit
from rag.records import Citation

CONTEXT_CHARS = 240  # characters of the document shown either side of a cited quote
_CITE = re.compile(r"\[(\d{1,3})\]")
_TAG = re.compile(r"<[^>]+>")
_NOTE = re.compile(r"<span class=\"rag-note[^\"]*\">.*?</span>", re.S)
DONE = '<span class="rag-note rag-done"></span>'  # marks a verified (final) answer for scripts and tests

DocLookup = Callable[[str], Document | None]


def linkify_citations(text: str, numbers: Sequence[int] | None = None) -> str:
    """Turn [n] markers into links to the sources panel (only for known numbers when given).

    Example: linkify_citations("Yes [1].", [1]) -> 'Yes <a class="rag-cite" href="#rag-src-1" ...>[1]</a>.'
    """
    known = set(numbers) if numbers is not None else None

    def sub(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if known is not None and n not in known:
            return m.group(0)
        return f'<a class="rag-cite" href="#rag-src-{n}" data-n="{n}" title="Show source {n}">[{n}]</a>'

    return _CITE.sub(sub, text)


def plain_text(content: str) -> str:
    """Chat message markup back to the plain text the pipeline saw. Example: '<a>[1]</a> x' -> '[1] x'."""
    return html.unescape(_TAG.sub("", _NOTE.sub("", content))).strip()


def note(text: str) -> str:
    """A UI-only remark appended to an answer; `plain_text` drops it again before it becomes history."""
    return f'<span class="rag-note">{html.escape(text)}</span>'


def _title(hit_or_cit_title: str, source: str, doc: Document | None) -> str:
    return hit_or_cit_title or (doc.title if doc else "") or source


def _highlight(text: str, start: int, end: int, before: int, after: int) -> str:
    """`text[start:end]` in <mark>, with `before`/`after` characters of context, escaped."""
    start, end = max(0, start), min(len(text), max(start, end))
    lo, hi = max(0, start - before), min(len(text), end + after)
    return (
        ("…" if lo > 0 else "")
        + html.escape(text[lo:start])
        + f"<mark>{html.escape(text[start:end])}</mark>"
        + html.escape(text[end:hi])
        + ("…" if hi < len(text) else "")
    )


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


def _full_document(doc: Document, start: int, end: int) -> str:
    body = _highlight(doc.text, start, end, len(doc.text), len(doc.text))
    return (
        '<details class="rag-full"><summary>Read it in the full document</summary>'
        f'<div class="rag-doc">{body}</div></details>'
    )


def _card(n: int | None, title: str, source: str, excerpt: str, full: str, extra_class: str = "") -> str:
    num = f'<span class="rag-n">{n}</span>' if n is not None else ""
    anchor = f' id="rag-src-{n}"' if n is not None else ""
    return (
        f'<div class="rag-src {extra_class}"{anchor}>'
        f'<div class="rag-src-head">{num}<span class="rag-title">{html.escape(title)}</span>'
        f'<span class="rag-file">{html.escape(source)}</span></div>'
        f'<blockquote class="rag-quote">{excerpt}</blockquote>{full}</div>'
    )


def citation_card(c: Citation, lookup: DocLookup, hits: Sequence[Hit] = ()) -> str:
    """A cited passage: the quote highlighted in its surrounding text, and the full document on demand."""
    doc = lookup(c.source)
    span = _span_in_doc(doc, c.start, c.end, c.quote)
    hit_title = next((h.chunk.title for h in hits if h.chunk.id == c.chunk_id), "")
    title = _title(c.title or hit_title, c.source, doc)
    if doc is not None and span is not None:
        excerpt = _highlight(doc.text, span[0], span[1], CONTEXT_CHARS, CONTEXT_CHARS)
        full = _full_document(doc, *span)
    else:  # document not readable: show the quote inside its chunk if we still have it
        chunk = next((h.chunk.text for h in hits if h.chunk.id == c.chunk_id), "")
        at = chunk.find(c.quote) if c.quote else -1
        excerpt = (
            _highlight(chunk, at, at + len(c.quote), CONTEXT_CHARS, CONTEXT_CHARS)
            if at >= 0
            else f"<mark>{html.escape(c.quote)}</mark>"
        )
        full = ""
    return _card(c.n, title, c.source, excerpt, full, "rag-cited")


def hit_card(hit: Hit, n: int | None, lookup: DocLookup, with_full: bool = True) -> str:
    """A retrieved passage (not verified as support): its text, and the full document on demand."""
    ch = hit.chunk
    doc = lookup(ch.source) if with_full else None
    excerpt = html.escape(ch.text)
    full = ""
    if doc is not None and 0 <= ch.start < ch.end <= len(doc.text):
        full = _full_document(doc, ch.start, ch.end)
    return _card(n, _title(ch.title, ch.source, doc), ch.source, excerpt, full)


def _panel(heading: str, body: str, status: str = "") -> str:
    st = f'<p class="rag-status">{html.escape(status)}</p>' if status else ""
    return f'<div class="rag-sources"><h3>{html.escape(heading)}</h3>{st}{body}</div>'


def empty_panel() -> str:
    return _panel("Sources", "", "Ask a question: the passages behind the answer appear here.")


def retrieved_panel(hits: Sequence[Hit], lookup: DocLookup) -> str:
    """Shown as soon as retrieval is done, while the model is still writing."""
    if not hits:
        return _panel("Sources", "", "No passages matched the question.")
    # Unnumbered: the draft's [n] follow the prompt's order, only the verified answer's numbers are linked.
    cards = "".join(hit_card(h, None, lookup, with_full=False) for h in hits)
    return _panel("Retrieved passages", cards, f"{len(hits)} passages found; the answer is being written…")


def answer_panel(citations: Sequence[Citation], hits: Sequence[Hit], lookup: DocLookup) -> str:
    """After the verified answer: the cited passages first, the other retrieved ones folded away."""
    cited = sorted({c.n: c for c in citations}.values(), key=lambda c: c.n)
    cited_chunks = {c.chunk_id for c in cited}
    body = "".join(citation_card(c, lookup, hits) for c in cited)
    rest = [h for h in hits if h.chunk.id not in cited_chunks]
    if rest:
        others = "".join(hit_card(h, None, lookup) for h in rest)
        summary = f"<summary>{len(rest)} more retrieved passages</summary>"
        body += f'<details class="rag-others">{summary}{others}</details>'
    status = "" if cited else "The answer cites no passage."
    return _panel("Sources", body, status)


def refused_panel(hits: Sequence[Hit], lookup: DocLookup) -> str:
    """A declined question: the closest passages, so the user sees what the documents do say."""
    if not hits:
        return _panel("Closest passages", "", "Nothing in the documents came close to this question.")
    cards = "".join(hit_card(h, None, lookup) for h in hits)
    return _panel("Closest passages", cards, "The documents do not answer this; these came closest.")


def error_panel() -> str:
    return _panel("Sources", "", "No sources: the question could not be answered.")
