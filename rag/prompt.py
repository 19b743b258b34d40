"""Build the chat messages for a question: fixed instructions first, then numbered, delimited passages.

The templates are package data (`rag/prompts/*.md`). The system message never changes, so llama.cpp reuses
its cached tokens between questions; only the passages and the question are new each time. Passages are
trimmed to the sentences closest to the question so the prompt stays small (speed on 2 cores), and text
that could close a delimiter is neutralised so a document cannot pose as instructions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

from index.records import Hit
from rag.grounding import Grounder, Span
from rag.records import DECLINE_MARKER, Question

MAX_PASSAGES = 3  # passages shown to the model
MAX_SENTENCES = 3  # per passage
BUDGET_CHARS = 800  # ~200 tokens of passage text: prompt eval runs ~100 tokens/s on 2 cores


@cache
def template(name: str) -> str:
    """The text of `rag/prompts/<name>.md`."""
    return resources.files("rag").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class Prompt:
    messages: tuple[dict[str, str], ...]
    passages: tuple[Hit, ...]  # passages[i] is shown as [i + 1]
    excerpts: tuple[str, ...]  # the text shown for each passage


def select_excerpts(
    question: str,
    hits: Sequence[Hit],
    grounder: Grounder,
    max_passages: int = MAX_PASSAGES,
    budget_chars: int = BUDGET_CHARS,
) -> list[tuple[Hit, str]]:
    """Pick the passages and, within them, the sentences that matter for `question`, under a size budget.

    Passages keep their retrieval order; a passage with no chosen sentence is left out.
    Example: select_excerpts("How much in G42?", hits, grounder) -> [(hit, "… $1.5 billion into G42 …")]
    """
    candidates = list(hits[: max_passages + 1])
    ranked = grounder.rank_sentences(question, candidates)
    chosen: dict[int, list[Span]] = {}
    seen: set[str] = set()  # overlapping chunks repeat sentences; show each once
    used = 0
    for score, i, (s, e) in _leads(ranked, candidates) + ranked:
        key = " ".join(hits[i].chunk.text[s:e].split()).lower()
        if key in seen:
            continue
        if score <= 0 and chosen:
            break
        if i not in chosen and len(chosen) >= max_passages:
            continue
        if len(chosen.get(i, [])) >= MAX_SENTENCES:
            continue
        length = e - s
        if used + length > budget_chars and chosen:
            continue
        chosen.setdefault(i, []).append((s, e))
        seen.add(key)
        used += length
    out = []
    for i in sorted(chosen):
        text = hits[i].chunk.text
        spans = sorted(chosen[i])
        pieces, last_end = [], None
        for s, e in spans:
            if last_end is not None and text[last_end:s].strip():
                pieces.append("…")
            pieces.append(text[s:e])
            last_end = e
        out.append((hits[i], " ".join(pieces)))
    return out


def _leads(ranked: list[tuple[float, int, Span]], hits: Sequence[Hit]) -> list[tuple[float, int, Span]]:
    """The best sentence of the top retrieved passage and of the best passage from another document, so a
    question about two things sees both articles whatever the sentence scores say."""
    if not hits:
        return []
    other = next((i for i, h in enumerate(hits) if h.chunk.source != hits[0].chunk.source), None)
    leads = []
    for want in (0, other):
        best = next((r for r in ranked if r[1] == want and r[0] > 0), None)
        if want is not None and best is not None:
            leads.append(best)
    return leads


def _neutralise(text: str) -> str:
    """Stop passage text from closing its delimiter or faking a new numbered passage."""
    text = text.replace('"""', "''")
    return re.sub(r"(?i)\bsource\s*\[(\d+)\]", r"source (\1)", " ".join(text.split()))


def build_prompt(question: Question | str, hits: Sequence[Hit], grounder: Grounder | None = None,
                 max_passages: int = MAX_PASSAGES, budget_chars: int = BUDGET_CHARS,
                 decline: str = DECLINE_MARKER) -> Prompt:
    """Messages for the model: the fixed system prompt, then the numbered excerpts and the question.

    `decline` is the marker the model is asked to write when the sources lack the answer.
    """
    grounder = grounder or Grounder()
    q = question if isinstance(question, Question) else Question(question)
    selected = select_excerpts(q.retrieval_text, hits, grounder, max_passages, budget_chars)
    block = Template(template("passage"))
    passages = "\n\n".join(
        block.substitute(n=n, source=hit.chunk.source, title=hit.chunk.title, text=_neutralise(text))
        for n, (hit, text) in enumerate(selected, 1)
    )
    asked = q.text.strip()
    if q.context:
        asked += f" (this follows the earlier question: {q.context.strip()})"
    user = Template(template("answer")).substitute(passages=passages, question=asked, decline=decline)
    system = Template(template("system")).substitute(decline=decline)
    messages = ({"role": "system", "content": system}, {"role": "user", "content": user})
    return Prompt(messages, tuple(h for h, _ in selected), tuple(t for _, t in selected))
