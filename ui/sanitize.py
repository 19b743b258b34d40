"""The one place untrusted text becomes HTML: document text, passages, quotes, questions, model output.

Everything that reaches the page is built here from plain text (escaped, so any markup in a document or
an answer is shown as text), plus our own markup, and then passed through `clean`, an allow-list
(nh3, the Rust `ammonia` sanitiser): our tags and classes only, no images, no styles, no event handlers,
links only to our own `#rag-…` anchors or as `rel="noopener noreferrer nofollow"` http(s) links.
The chat component renders our HTML as is (no Markdown), so `![x](http://…)` in a document or answer is
text, never an image. Leaves out CSP headers (the server's job).
"""

from __future__ import annotations

import html
import re

import nh3

# Our markup: the tags the render module produces, nothing that loads or runs anything.
TAGS = {
    "a", "b", "blockquote", "br", "button", "details", "div", "em", "h3", "li", "mark", "ol", "p",
    "span", "strong", "summary", "ul",
}  # fmt: skip
ATTRIBUTES = {
    "*": {"class", "id", "title", "aria-label", "role", "dir"},
    "a": {"href"},
    "button": {"type"},
    "details": {"open"},
}
# Bidi overrides/isolates let a document make text read differently than it is stored ("Trojan
# source"); they are dropped from untrusted text (the page sets dir=auto where direction matters).
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f]")
_CITE = re.compile(r"\[(\d{1,3})\]")


def clean(markup: str) -> str:
    """Our HTML through the allow-list. Example: clean('<img src=x onerror=a()>hi') -> 'hi'."""
    return nh3.clean(
        markup,
        tags=TAGS,
        attributes=ATTRIBUTES,
        generic_attribute_prefixes={"data-"},
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def text(value: str) -> str:
    """Untrusted text as inert HTML: escaped, bidi controls dropped. Example: text('<b>') -> '&lt;b&gt;'."""
    return html.escape(_BIDI.sub("", value or ""), quote=True)


def multiline(value: str) -> str:
    """Like `text`, line breaks kept as <br>. Example: multiline('a\\nb') -> 'a<br>b'."""
    return text(value).replace("\r\n", "\n").replace("\n", "<br>")


def cite_link(msg_id: str, n: int) -> str:
    """Our link from an answer's [n] to that answer's source n in the sources panel."""
    mid = re.sub(r"[^A-Za-z0-9_-]", "", msg_id)
    return (
        f'<a class="rag-cite" href="#rag-src-{mid}-{n}" data-msg="{mid}" data-n="{n}" '
        f'title="Show source {n}">[{n}]</a>'
    )


def answer(value: str, msg_id: str, numbers: set[int] | None = None) -> str:
    """Model output as HTML: escaped text, [n] (for known numbers) linked to this answer's sources.

    Example: answer("Yes [1].", "m1", {1}) -> 'Yes <a class="rag-cite" href="#rag-src-m1-1" …>[1]</a>.'
    """
    escaped = multiline(value)

    def sub(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return m.group(0) if numbers is not None and n not in numbers else cite_link(msg_id, n)

    return clean(_CITE.sub(sub, escaped))
