"""Page chrome detection: which lines of a document are content and which are boilerplate.

Covers the chrome that website exports leave in plain text ("top of page", "Comments", "See All",
contact and promotion lines). It never edits the text: it returns *spans* of the original text, so chunk
offsets still point into the document exactly. It leaves out layout-aware extraction (that needs the HTML).
"""

from __future__ import annotations

import re

# Whole lines (case-insensitive, trailing punctuation ignored) that carry no content.
_CHROME_LINES = {
    "top of page",
    "bottom of page",
    "back to top",
    "skip to content",
    "skip to main content",
    "comments",
    "comment",
    "recent posts",
    "related posts",
    "see all",
    "view all",
    "read more",
    "commenting has been turned off",
    "share",
    "share this",
    "share this post",
    "menu",
    "search",
    "log in",
    "login",
    "sign in",
    "sign up",
    "subscribe",
    "follow us",
    "last updated",
    "advertisement",
    "all posts",
    "previous post",
    "next post",
    "cookie settings",
    "accept cookies",
    "privacy policy",
    "terms of use",
    "terms of service",
    "home",
    "like",
    "reply",
    "print",
    "email",
}
_CHROME_PATTERNS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b",  # contact lines: "please email our friendly team via admin@x.com"
        r"\bclick (?:the |this )?(?:button|here|link)\b",
        r"\ball rights reserved\b",
        r"^©|\(c\) ?\d{4}",
        r"\bsign up (?:for|to) (?:our )?newsletter\b",
        r"\b(?:we use|this site uses) cookies\b",
        r"^\d+ (?:views?|comments?|likes?)$",
    )
]
_MAX_PATTERN_LINE = 300  # a long paragraph that happens to contain an e-mail address is still content


def is_boilerplate(line: str) -> bool:
    """True for a line of page chrome. Example: is_boilerplate("Recent Posts") -> True."""
    s = " ".join(line.split()).strip()
    if not s:
        return False
    if s.lower().rstrip(".:!·|>»").strip() in _CHROME_LINES:
        return True
    return len(s) <= _MAX_PATTERN_LINE and any(p.search(s) for p in _CHROME_PATTERNS)


def content_spans(text: str) -> list[tuple[int, int]]:
    """Maximal runs of content lines, as (start, end) offsets; blank lines inside a run are kept.

    Example: content_spans("top of page\\n\\nHello.\\n\\nComments\\n") -> [(13, 19)]
    """
    spans: list[tuple[int, int]] = []
    start: int | None = None
    end = 0
    for m in re.finditer(r"[^\n]*(?:\n|$)", text):
        if m.start() == len(text) and not m.group():
            break
        line = m.group().rstrip("\n")
        stripped = line.strip()
        if not stripped:
            continue
        if is_boilerplate(stripped):
            if start is not None:
                spans.append((start, end))
                start = None
            continue
        lead = len(line) - len(line.lstrip())
        if start is None:
            start = m.start() + lead
        end = m.start() + len(line.rstrip())
    if start is not None:
        spans.append((start, end))
    return spans
