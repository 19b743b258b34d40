"""Build the chat messages for a question: fixed instructions first, then numbered, delimited passages.

The templates are package data (`rag/prompts/*.md`). The system message never changes, so llama.cpp reuses
its cached tokens between questions; only the passages and the question are new each time. Passages are
trimmed to the sentences closest to the question so the prompt stays small (speed on 2 cores), and text
that could close a delimiter is neutralised so a document cannot pose as instructions.
"""

from __future__ import annotations

import json
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
MAX_CORE = 3  # best sentences taken per passage before any neighbour is added
BUDGET_CHARS = 800  # ~200 tokens of passage text: prompt eval runs ~40-100 tokens/s on 2 cores
MAX_TABLE_CHARS = 600  # a table up to this size is shown whole: a row means nothing without its header


@cache
def template(name: str) -> str:
    """The text of `rag/prompts/<name>.md`."""
    return resources.files("rag").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8").strip()


@cache
def examples() -> tuple[dict[str, object], ...]:
    """The worked examples of `rag/prompts/examples.json` (entries with sources, question and answer)."""
    raw = resources.files("rag").joinpath("prompts", "examples.json").read_text(encoding="utf-8")
    return tuple(e for e in json.loads(raw) if "question" in e)


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
    """Pick the passages and, within them, the text that matters for `question`, under a size budget.

    Two passes. First the best-scoring units (sentences, or a whole small table) across the top passages;
    then, while the budget lasts, the sentence after and the sentence before each chosen one, best first.
    Neighbours carry what a lone sentence loses: "New in version 3.4." after a function's description,
    the sentence "it" points back to. Passages keep their retrieval order; one with nothing chosen is left
    out. Example: select_excerpts("How much in G42?", hits, grounder) -> [(hit, "… $1.5 billion into G42 …")]
    """
    candidates = list(hits[: max_passages + 1])
    ranked = grounder.rank_sentences(question, candidates)
    units = {i: _units(h.chunk.text, grounder.sentences(h)) for i, h in enumerate(candidates)}
    unit_of = {(i, span): u for i, us in units.items() for u, group in enumerate(us) for span in group}
    chosen: dict[int, set[int]] = {}
    seen: set[str] = set()  # overlapping chunks repeat sentences; show each once
    used = 0

    def take(i: int, u: int) -> bool:
        nonlocal used
        group = units[i][u]
        text = hits[i].chunk.text[group[0][0] : group[-1][1]]
        key = " ".join(text.split()).lower()
        if key in seen or u in chosen.get(i, set()):
            return False
        if i not in chosen and len(chosen) >= max_passages:
            return False
        if used + len(text) > budget_chars and chosen:
            return False
        chosen.setdefault(i, set()).add(u)
        seen.add(key)
        used += len(text)
        return True

    order: list[tuple[int, int]] = []
    for score, i, span in _leads(ranked, candidates) + ranked:
        if score <= 0 and chosen:
            break
        u = unit_of[(i, span)]
        if len(chosen.get(i, ())) >= MAX_CORE:
            continue
        if take(i, u):
            order.append((i, u))
    for i, u in order:  # second pass: neighbours of the chosen units, the best unit's first
        for v in (u + 1, u - 1):
            if 0 <= v < len(units[i]):
                take(i, v)
    out = []
    for i in sorted(chosen):
        text = hits[i].chunk.text
        pieces, last = [], None
        for u in sorted(chosen[i]):
            group = units[i][u]
            if last is not None and u != last + 1:
                pieces.append("…")
            pieces.append(text[group[0][0] : group[-1][1]])
            last = u
        out.append((hits[i], " ".join(pieces)))
    return out


def _units(text: str, sentences: Sequence[Span]) -> list[list[Span]]:
    """Sentences grouped into the units shown together: consecutive table lines ("| a | b |") form one
    unit when the table is small, so a row is never shown without its header; every other sentence is
    a unit of its own."""
    units: list[list[Span]] = []
    for span in sentences:
        row = text[span[0] : span[1]].lstrip().startswith("|")
        prev = units[-1] if units else None
        if (row and prev is not None and text[prev[-1][0] : prev[-1][1]].lstrip().startswith("|")
                and span[1] - prev[0][0] <= MAX_TABLE_CHARS):
            prev.append(span)
        else:
            units.append([span])
    return units


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
    lines = (" ".join(line.split()) for line in text.splitlines())  # table rows keep their own lines
    return re.sub(r"(?i)\bsource\s*\[(\d+)\]", r"source (\1)", "\n".join(line for line in lines if line))


def build_prompt(question: Question | str, hits: Sequence[Hit], grounder: Grounder | None = None,
                 max_passages: int = MAX_PASSAGES, budget_chars: int = BUDGET_CHARS,
                 decline: str = DECLINE_MARKER, worked_examples: bool = True) -> Prompt:
    """Messages for the model: the fixed system prompt, the worked examples as earlier turns, then the
    numbered excerpts and the question.

    `decline` is the marker the model is asked to write when the sources lack the answer. Everything before
    the last message is the same for every question, so llama.cpp serves it from its prompt cache.
    """
    grounder = grounder or Grounder()
    q = question if isinstance(question, Question) else Question(question)
    selected = select_excerpts(q.retrieval_text, hits, grounder, max_passages, budget_chars)
    asked = q.text.strip()
    if q.context:
        asked += f" (this follows the earlier question: {q.context.strip()})"
    user = _turn([text for _, text in selected], asked, decline)
    system = Template(template("system")).substitute(decline=decline)
    shots: list[dict[str, str]] = []
    for example in examples() if worked_examples else ():
        sources = [str(s) for s in example["sources"]]  # type: ignore[attr-defined]
        answer = Template(str(example["answer"])).substitute(decline=decline)
        shots.append({"role": "user", "content": _turn(sources, str(example["question"]), decline)})
        shots.append({"role": "assistant", "content": answer})
    messages = ({"role": "system", "content": system}, *shots, {"role": "user", "content": user})
    return Prompt(messages, tuple(h for h, _ in selected), tuple(t for _, t in selected))


def _turn(texts: Sequence[str], question: str, decline: str) -> str:
    """One user message: the numbered sources, then the question."""
    block = Template(template("passage"))
    passages = "\n\n".join(block.substitute(n=n, text=_neutralise(text)) for n, text in enumerate(texts, 1))
    return Template(template("answer")).substitute(passages=passages, question=question, decline=decline)
