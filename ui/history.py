"""Earlier conversations kept in the browser: the store's shape, and a conversation as Markdown.

The store is a plain dict kept by the page in localStorage (`gr.BrowserState`):
{"current": <id>, "items": [Conversation.dump(), ...]}, newest first, at most `MAX_CONVERSATIONS`.
Pure functions, so they are unit-tested without Gradio. Leaves out any server-side storage.
"""

from __future__ import annotations

from typing import Any

from ui.conversation import DONE, Conversation

MAX_CONVERSATIONS = 50


def empty_store() -> dict[str, Any]:
    return {"current": "", "items": []}


def _items(store: dict[str, Any] | None) -> list[dict[str, Any]]:
    items = (store or {}).get("items")
    return [i for i in items if isinstance(i, dict) and i.get("id")] if isinstance(items, list) else []


def save(store: dict[str, Any] | None, conv: Conversation) -> dict[str, Any]:
    """`store` with `conv` as the current, newest conversation (an empty one is not listed)."""
    items = [i for i in _items(store) if i.get("id") != conv.id]
    data = conv.dump()
    if data["exchanges"]:
        items.insert(0, data)
    return {"current": conv.id, "items": items[:MAX_CONVERSATIONS]}


def current(store: dict[str, Any] | None) -> Conversation:
    """The conversation the store marks as current (a new one when there is none)."""
    want = (store or {}).get("current")
    item = next((i for i in _items(store) if i.get("id") == want), None)
    return Conversation.load(item) if item else Conversation()


def pick(store: dict[str, Any] | None, conv_id: str) -> Conversation:
    item = next((i for i in _items(store) if i.get("id") == conv_id), None)
    return Conversation.load(item) if item else Conversation()


def remove(store: dict[str, Any] | None, conv_id: str) -> dict[str, Any]:
    return {"current": "", "items": [i for i in _items(store) if i.get("id") != conv_id]}


def choices(store: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(label, id) pairs for a dropdown. Example: [("Who leads Microsoft AI?", "3f9c…")]."""
    return [(str(i.get("title") or "Untitled")[:60], str(i["id"])) for i in _items(store)]


def to_markdown(conv: Conversation) -> str:
    """The conversation as Markdown: each question, its verified answer and its cited sources."""
    lines = [f"# {conv.title or 'Conversation'}", ""]
    for ex in conv.exchanges:
        lines += [f"**Question:** {ex.question}", ""]
        if ex.status != DONE:
            lines += [f"_({ex.status}: no verified answer)_", ""]
            continue
        lines += [ex.answer, ""]
        cits = (ex.record or {}).get("citations") or []
        if cits:
            lines.append("Sources:")
            seen: set[int] = set()
            for c in cits:
                if c.get("n") in seen:
                    continue
                seen.add(c.get("n"))
                title = c.get("title") or c.get("source", "")
                lines.append(f"- [{c.get('n')}] {title} ({c.get('source', '')}): “{c.get('quote', '')}”")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
