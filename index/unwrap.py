"""Hard-wrapped lines joined back into their paragraphs, in place, so a sentence is one line again.

Markdown and plain-text files are often wrapped at 80-120 columns, and text extracted from a PDF has a line
break at the end of every printed line. Everything downstream reads a line break as the end of a unit: the
chunker starts paragraphs there, the sentence splitter (rag/grounding.py) cuts there, and so the model and
the judge were shown "Your line manager approves" and "or declines the request within five working days."
as two sentences. A soft break is replaced by a space, one character for one, so every offset into the text
(chunks, citations) stays valid and the full-document view shows reflowed paragraphs.

What is a soft break follows CommonMark's paragraphs: a line break between two lines of text, neither a
heading, table row, list item start, quote, fence, or code. Two more conditions keep structure that plain
text expresses only by line breaks: a line ending in `.`, `!`, `?`, `:` or `;` keeps its break (nothing is
lost: a sentence ends there anyway), and a short line (a title, an address line) keeps it unless the next line
starts in lower case. "Short" is relative to the file's own wrap width, so files that are not wrapped at all
(one paragraph per line) are left alone.
Not covered: hyphenation at line ends (the hyphen stays: removing it would shift offsets), HTML and .docx
(their readers produce one line per block already).
"""

from __future__ import annotations

import re

_BLOCK_START = re.compile(r"\s*(#|\||>|```|~~~|[-*+•]\s|\d{1,3}[.)]\s|[=\-_*]{3,}\s*$)")
_KEEPS_BREAK = re.compile(r"([.!?:;]|[.!?][\"”’)\]*_]+)\s*$|\s{2,}$|\\$")
MAX_WRAP_WIDTH = 200  # a file whose long lines are longer than this is not hard-wrapped
MIN_WRAP_WIDTH = 40  # nor one whose lines are all shorter than this (addresses, lists of names, verse)
SHORT = 0.6  # a line shorter than this share of the wrap width ends where its writer ended it


def wrap_width(lines: list[str]) -> int:
    """The file's wrap width: the 90th percentile length of its non-blank lines (0 when it has none).

    Example: wrap_width(["a" * 80, "b" * 78, "c" * 20]) -> 80
    """
    lengths = sorted(len(line.rstrip()) for line in lines if line.strip())
    return lengths[min(len(lengths) - 1, int(0.9 * len(lengths)))] if lengths else 0


def unwrap(text: str) -> str:
    """`text` with its soft line breaks replaced by spaces (same length, same offsets).

    Example: unwrap("It is approved\\nor declined.\\n\\n# Next") -> 'It is approved or declined.\\n\\n# Next'
    """
    lines = text.split("\n")
    width = wrap_width(lines)
    out = list(text)
    pos = 0
    fenced = False
    for this, after in zip(lines, lines[1:], strict=False):
        pos += len(this)  # the "\n" after `this` is at text[pos]
        if this.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        if not fenced and _soft_break(this, after, width):
            out[pos] = " "
        pos += 1
    return "".join(out)


def _soft_break(this: str, after: str, width: int) -> bool:
    if not this.strip() or not after.strip():
        return False  # a blank line ends a paragraph
    if _BLOCK_START.match(this) and not re.match(r"\s*([-*+•]\s|\d{1,3}[.)]\s)", this):
        return False  # headings, table rows, quotes, fences and rules stand alone (list items may wrap)
    if _BLOCK_START.match(after) or after.startswith(("    ", "\t")) and not this.startswith((" ", "\t")):
        return False  # the next line starts a block of its own, or code
    if _KEEPS_BREAK.search(this):
        return False
    first = after.lstrip()[:1]
    if first.islower():
        return True
    return MIN_WRAP_WIDTH <= width <= MAX_WRAP_WIDTH and len(this.rstrip()) >= SHORT * width
