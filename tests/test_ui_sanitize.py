"""The allow-list: untrusted text becomes inert HTML; only our markup survives `clean`."""

from __future__ import annotations

import pytest

from ui import sanitize


def elements(markup: str) -> list[tuple[str, dict[str, str | None]]]:
    """The tags and attributes a browser would build from `markup`."""
    from html.parser import HTMLParser

    found: list[tuple[str, dict[str, str | None]]] = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, dict(attrs)))

    P().feed(markup)
    return found


def assert_inert(markup: str) -> None:
    for tag, attrs in elements(markup):
        assert tag in sanitize.TAGS, (tag, markup)
        assert not any(a.startswith("on") or a in ("style", "src") for a in attrs), (attrs, markup)
        href = attrs.get("href") or ""
        assert href.startswith(("#", "http://", "https://")) or not href, markup


pytestmark = pytest.mark.unit

HOSTILE = [
    "<script>window.__pwned=1</script>",
    '<img src="http://127.0.0.1:9/pixel.png" onerror="window.__pwned=1">',
    "![x](http://127.0.0.1:9/pixel.png)",
    '<svg onload="window.__pwned=1"><image href="http://127.0.0.1:9/p.png"/></svg>',
    "<style>body{background:url(http://127.0.0.1:9/p.png)}</style>",
    '<a href="javascript:window.__pwned=1">click</a>',
    '<a href="data:text/html,<script>1</script>">d</a>',
    '<iframe src="http://127.0.0.1:9/"></iframe>',
    '<div style="background:url(http://127.0.0.1:9/p.png)">s</div>',
]


@pytest.mark.parametrize("attack", HOSTILE)
def test_untrusted_text_is_text(attack):
    out = sanitize.answer(attack + " [1]", "m1", {1})
    assert_inert(out)
    assert [t for t, _ in elements(out)] == ["a"]  # our citation link, nothing of the attack
    assert 'href="#rag-src-m1-1"' in out


@pytest.mark.parametrize("attack", HOSTILE)
def test_clean_strips_markup_that_loads_or_runs(attack):
    out = sanitize.clean(attack)
    assert_inert(out)
    assert "javascript:" not in out and "data:text" not in out


def test_links_are_http_only_and_not_followed():
    out = sanitize.clean('<a href="https://example.org/x">x</a><a href="ftp://e/x">y</a>')
    assert 'href="https://example.org/x"' in out and 'rel="noopener noreferrer nofollow"' in out
    assert "ftp:" not in out


def test_bidi_overrides_are_dropped_and_lines_kept():
    assert sanitize.multiline("a\u202eb\nc") == "ab<br>c"


def test_message_id_cannot_break_out_of_the_attribute():
    assert '"' not in sanitize.cite_link('x" onclick="y', 1).split('data-msg="')[1].split('"')[0]
