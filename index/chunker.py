"""Sentence- and paragraph-aware chunking with exact offsets: `chunk.text == doc.text[chunk.start:chunk.end]`.

Chunks are packed from whole sentences up to `max_tokens` (counted with the embedding model's tokenizer
when one is given), overlap the previous chunk by whole sentences up to `overlap` tokens, never start a
chunk inside a sentence unless that sentence alone is too long, and move a trailing section heading to the
chunk it introduces. Only the content spans of a document are chunked (see `index.boilerplate`), so page
chrome does not crowd out content. Leaves out language-specific sentence rules beyond a few abbreviations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from index.boilerplate import content_spans
from index.records import Chunk, Document, content_hash

TokenCounter = Callable[[Sequence[str]], list[int]]
CHUNKER_VERSION = 2  # bump when a rule changes, so `rag index` re-chunks stored documents

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+)")
_LAST_WORD = re.compile(r"([\w.]+)$")  # the word before a full stop (is it an abbreviation?)
_WORD_WINDOW = 64  # characters looked back for it; every abbreviation is far shorter
_SPACES = re.compile(r"\s*")
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "st",
    "vs",
    "e.g",
    "i.e",
    "etc",
    "inc",
    "co",
    "corp",
    "ltd",
    "jr",
    "sr",
    "u.s",
    "u.k",
    "no",
    "fig",
    "approx",
    "dept",
    "est",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
}
_TITLE_PREFIX_CHARS = 120  # keeps title + chunk under MiniLM's 256 word pieces


def approx_token_count(texts: Sequence[str]) -> list[int]:
    """A tokenizer-free estimate of word pieces. Example: approx_token_count(["Hello, world!"]) -> [4]."""
    return [sum(1 + len(w) // 8 for w in re.findall(r"\w+|[^\w\s]", t)) for t in texts]


def embed_text(chunk: Chunk) -> str:
    """What gets embedded: the title (which situates the passage) and then the passage itself."""
    title = chunk.title[:_TITLE_PREFIX_CHARS]
    if not title or chunk.text.startswith(title):
        return chunk.text
    return f"{title}\n{chunk.text}"


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    block: int  # index of the paragraph (line) it belongs to
    heading: bool  # a short line without end punctuation, e.g. "Origins of the Partnership"
    tokens: int = 0


def chunk_document(
    doc: Document, max_tokens: int = 200, overlap: int = 40, count_tokens: TokenCounter | None = None
) -> list[Chunk]:
    """Split a document into chunks of at most about `max_tokens` tokens, overlapping by whole sentences.

    Example: chunk_document(Document("d", "a.txt", "T", "One. Two.\\n"), 200, 40)[0].text -> "One. Two."
    """
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    count = count_tokens or approx_token_count
    overlap = max(0, min(overlap, max_tokens // 2))
    spans = content_spans(doc.text)
    units_by_span = [_sentence_units(doc.text, s, e) for s, e in spans]
    flat = [u for units in units_by_span for u in units]
    counts = count([doc.text[u.start : u.end] for u in flat]) if flat else []
    it = iter(counts)
    sized = [
        _split_long(doc.text, [_with_tokens(u, next(it)) for u in us], max_tokens, count)
        for us in units_by_span
    ]
    pieces = [
        piece for group in _merge_tiny_spans(sized, max_tokens) for piece in _pack(group, max_tokens, overlap)
    ]
    return [
        Chunk(
            id=content_hash(doc.source, doc.text[s:e], str(s)),
            doc_id=doc.id,
            source=doc.source,
            title=doc.title,
            text=doc.text[s:e],
            start=s,
            end=e,
        )
        for s, e, _ in pieces
    ]


def _with_tokens(u: _Unit, n: int) -> _Unit:
    return _Unit(u.start, u.end, u.block, u.heading, n)


def _sentence_units(text: str, start: int, end: int) -> list[_Unit]:
    """Sentences of text[start:end], each line being its own paragraph."""
    units: list[_Unit] = []
    pos = start
    block = 0
    for line in text[start:end].split("\n"):
        line_start, line_end = pos, pos + len(line)
        pos = line_end + 1
        stripped = line.strip()
        if not stripped:
            continue
        ls = line_start + (len(line) - len(line.lstrip()))
        le = line_end - (len(line) - len(line.rstrip()))
        cuts = [ls]
        for m in _SENTENCE_END.finditer(text, ls, le):
            # Only a bounded look back and forward: slicing from the line's start, or to its end, at every
            # sentence made one long line quadratic (a 150 KB single-line file took 22 s to chunk).
            word = _LAST_WORD.search(text, max(ls, m.start() - _WORD_WINDOW), m.start())
            if m.group().startswith(".") and word and word.group(1).lower().rstrip(".") in _ABBREVIATIONS:
                continue
            nxt = _SPACES.match(text, m.end(), le).end()  # type: ignore[union-attr]  # \s* always matches
            if nxt < le and not text[nxt].islower():
                cuts.append(nxt)
        cuts.append(le)
        heading = len(cuts) == 2 and len(stripped) <= 80 and stripped[-1] not in ".!?:;,\"'”’)"
        for a, b in zip(cuts, cuts[1:], strict=False):
            b_trim = a + len(text[a:b].rstrip())
            if b_trim > a:
                units.append(_Unit(a, b_trim, block, heading))
        block += 1
    return units


def _split_long(text: str, units: list[_Unit], max_tokens: int, count: TokenCounter) -> list[_Unit]:
    """Cut sentences longer than `max_tokens` at word boundaries."""
    out: list[_Unit] = []
    for u in units:
        if u.tokens <= max_tokens:
            out.append(u)
            continue
        words = list(re.finditer(r"\S+", text[u.start : u.end]))
        sizes = count([w.group() for w in words])
        a = u.start + words[0].start()
        total = 0
        last_end = a
        for w, n in zip(words, sizes, strict=True):
            if total and total + n > max_tokens:
                out.append(_Unit(a, last_end, u.block, False, total))
                a, total = u.start + w.start(), 0
            total += n
            last_end = u.start + w.end()
        out.append(_Unit(a, last_end, u.block, False, total))
    return out


def _pack(units: list[_Unit], max_tokens: int, overlap: int) -> list[tuple[int, int, int]]:
    chunks: list[tuple[int, int, int]] = []
    cur: list[_Unit] = []

    def emit(group: list[_Unit]) -> None:
        chunks.append((group[0].start, group[-1].end, sum(u.tokens for u in group)))

    for u in units:
        if cur and sum(x.tokens for x in cur) + u.tokens > max_tokens:
            tail = 0  # trailing headings belong with the section they introduce
            while tail < len(cur) - 1 and cur[-1 - tail].heading:
                tail += 1
            body = cur[: len(cur) - tail]
            emit(body)
            cur = cur[len(cur) - tail :] if tail else _overlap_tail(body, overlap)
            while cur and sum(x.tokens for x in cur) + u.tokens > max_tokens:
                cur.pop(0)
        cur.append(u)
    if cur:
        emit(cur)
    return chunks


def _overlap_tail(units: list[_Unit], overlap: int) -> list[_Unit]:
    """The last whole sentences of a chunk, at most `overlap` tokens, never the whole chunk."""
    tail: list[_Unit] = []
    total = 0
    for u in reversed(units[1:]):
        if total + u.tokens > overlap:
            break
        tail.insert(0, u)
        total += u.tokens
    return tail


def _merge_tiny_spans(spans: list[list[_Unit]], max_tokens: int) -> list[list[_Unit]]:
    """Join a very small span (e.g. a title cut off by a chrome line) to the next one, else the previous."""
    tiny = max(8, max_tokens // 5)
    out: list[list[_Unit]] = []
    pending: list[_Unit] = []
    for units in spans:
        units = pending + units
        pending = []
        if sum(u.tokens for u in units) < tiny:
            pending = units
        elif units:
            out.append(units)
    if pending:
        if out:
            out[-1] = out[-1] + pending
        else:
            out.append(pending)
    return out
