"""Follow-up → standalone question, deterministically (no model needed, so it works with every backend).

"And how much in G42?" after "How much did Microsoft invest in Inflection?" becomes
"How much did Microsoft invest in G42?": the new entity replaces the one in the same slot (same preposition)
of the previous question, or its last entity. A follow-up that only points back ("When did it happen?")
keeps its words and carries the previous question as `Question.context` (used for retrieval). Earlier
follow-ups are rewritten first, in order.
Not covered: follow-ups that need world knowledge or the assistant's answer to resolve.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.grounding import STOPWORDS
from rag.records import Question, Turn

_LEAD = re.compile(
    r"^\s*(?:and|also|so|ok(?:ay)?|then|but)\b[\s,]*|^\s*(?:what|how)\s+about\b\s*", re.IGNORECASE
)
_PRONOUN = re.compile(
    r"\b(it|its|they|them|their|theirs|that|this|these|those|he|him|his|she|her|there|the same)\b",
    re.IGNORECASE,
)
_QWORD = re.compile(
    r"^\s*(how much|how many|how|what|which|who|whom|whose|when|where|why|did|does|do|is|are|was|"
    r"were|can|could|will|would)\b",
    re.IGNORECASE,
)
_OPENERS = STOPWORDS | {"how", "what", "who", "when", "where", "which"}
_ENTITY = re.compile(r"\b(?:[A-Z][\w\-]*|[a-z]*\d[\w\-]*)(?:['’]s)?(?:\s+(?:[A-Z][\w\-]*|\d[\w\-]*))*")
_PREP = r"(in|into|to|for|from|with|by|of|on|at|about|between|than)"


def is_follow_up(question: str) -> bool:
    """Whether a question leans on the previous one. Example: is_follow_up("And how much in G42?") -> True."""
    q = question.strip()
    words = re.findall(r"\w+", q)
    if _LEAD.match(q):
        return True
    return bool(_PRONOUN.search(q)) and len(words) <= 8 or len(words) <= 3


def _entities(text: str) -> list[tuple[int, int, str]]:
    out = []
    for m in _ENTITY.finditer(text):
        value = m.group(0)
        if m.start() == 0 and value.split()[0].lower() in _OPENERS:
            continue
        out.append((m.start(), m.end(), value))
    return out


def merge(previous: str, follow_up: str) -> Question:
    """Merge a follow-up into the previous (standalone) question.

    Example: merge("How much did Microsoft invest in Inflection?", "And how much in G42?")
             -> Question('How much did Microsoft invest in G42?')
    """
    rest = _LEAD.sub("", follow_up.strip()).strip()
    if _self_contained(rest):
        return Question(_capital(rest))  # "And when did Microsoft first invest in OpenAI?" stands alone
    new = [e for e in _entities(rest) if e[2].lower() not in previous.lower()]
    old = _entities(previous)
    if new and old and not _PRONOUN.search(_QWORD.sub("", rest)):
        target = old[-1]
        prep = re.search(_PREP + r"\s+" + re.escape(new[0][2]), rest)
        if prep:
            alternatives = "|".join(re.escape(e[2]) for e in old)
            slot = re.search(r"\b" + prep.group(1) + r"\s+(" + alternatives + r")", previous)
            if slot:
                target = next(e for e in old if e[0] == slot.start(1))
        q_new, q_old = _QWORD.match(rest), _QWORD.match(previous)
        if q_new and (not q_old or q_new.group(1).lower() != q_old.group(1).lower()):
            return Question(_capital(rest))  # a new question about a new entity stands on its own
        start, end, _ = target
        return Question(previous[:start] + new[0][2] + previous[end:])
    return Question(f"{_capital(rest).rstrip('?. ')}?", context=previous.strip())


def standalone_question(question: str, history: Sequence[Turn] = ()) -> Question:
    """`question` made self-contained using the user's earlier questions in `history` (oldest first)."""
    previous = ""
    for turn in history:
        if turn.role == "user" and turn.content.strip():
            content = turn.content.strip()
            previous = merge(previous, content).text if previous and is_follow_up(content) else content
    if previous and is_follow_up(question):
        return merge(previous, question)
    return Question(question.strip())


def _self_contained(question: str) -> bool:
    """A full question (question word, a verb's worth of words, a name, nothing pointing back)."""
    words = re.findall(r"\w+", question)
    return (
        bool(_QWORD.match(question))
        and len(words) >= 5
        and not _PRONOUN.search(_QWORD.sub("", question))
        and bool(_entities(question))
    )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
