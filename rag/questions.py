"""What a question asks for, read from its wording: the kind of fact (money, year, date, count, percent),
the words that say what is asked about it, and which of its names only describe (the "Windows maker") rather
than name what it is about. Used to check that an answer answers *this* question.
Not covered: scoring passages (rag/grounding.py) and citations (rag/citations.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.grounding import STOPWORDS, content_words, name_in, names_of, numbers_of, plain_hyphens, stem

_DATE = re.compile(r"\b(which|what|exact|specific)\s+(exact\s+)?(day|date)\b", re.IGNORECASE)
_MONTHS = ("jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t(ember)?)?|oct(ober)?"
           "|nov(ember)?|dec(ember)?")
_DAY_IN_TEXT = re.compile(
    rf"\b({_MONTHS})\.?\s+\d{{1,2}}(st|nd|rd|th)?\b|\b\d{{1,2}}(st|nd|rd|th)?\s+(of\s+)?({_MONTHS})\b"
    r"|\b\d{4}-\d\d-\d\d\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b",
    re.IGNORECASE,
)
_DETERMINERS = frozenset("the a an which what whose this that its their his her our".split())
# Words that say what kind of answer is wanted, not what it is about.
_ASKING = STOPWORDS | frozenset("""
which what who whom whose when where why how name named called kind type exact exactly specific
year day date sum amount figure number long
""".split())


_YEAR = re.compile(r"\b(when|what year|which year|since when|until when|by when)\b", re.IGNORECASE)
_MONEY_ASKED = re.compile(r"\bhow much\b|\b(what|which) (sum|amount)\b"
                          r"|\b(cost|costs|price|priced|pay|paid|spend|spent|worth|valuation)\b", re.I)
_COUNT = re.compile(r"\bhow many\b", re.IGNORECASE)
_PERCENT = re.compile(r"\b(percent|percentage|share of|what share|what fraction)\b", re.IGNORECASE)
_MONEY_IN_TEXT = re.compile(r"[$€£¥]\s?\d|\d\s*(%|percent|thousand|million|billion|trillion|bn)\b"
                            r"|\b\d[\d,.]*\s*(dollars|euros|usd)\b", re.IGNORECASE)


def answer_type(question: str) -> str | None:
    """What kind of fact a question asks for, when it clearly asks for a figure.

    Example: answer_type("How much did Microsoft invest in G42?") -> 'money'; answer_type("Who?") -> None
    """
    q = question.strip()
    if _DATE.search(q):
        return "date"
    if _COUNT.search(q):
        return "count"
    if _PERCENT.search(q):
        return "percent"
    if _MONEY_ASKED.search(q):
        return "money"
    if _YEAR.search(q):
        return "year"
    return None


def figure_near(text: str, names: Sequence[str], window: int = 5) -> bool:
    """Whether some figure in `text` lies within `window` words of every name (the figure is *about* them).

    Example: figure_near("…startups like Mistral and Inflection, and a $1.5 billion investment in G42",
             ["Mistral"]) -> False
    """
    if not names:
        return True
    tokens = text.split()
    figures = [i for i, t in enumerate(tokens) if re.search(r"\d", t)]
    for i in figures:
        near = " ".join(tokens[max(0, i - window) : i + window + 1])
        if all(name_in(n, near) for n in names):
            return True
    return False


def counted_noun(question: str) -> str:
    """The stemmed noun a "how many" question counts. Example: counted_noun("How many staff?") -> 'staff'."""
    m = re.search(r"\bhow many\s+([A-Za-z][\w-]*)", question, re.IGNORECASE)
    return stem(m.group(1)) if m else ""


def has_answer_type(text: str, kind: str | None) -> bool:
    """Whether `text` holds a fact of the kind a question asked for (money, year, count, percent)."""
    if kind is None:
        return True
    if kind == "money":
        return _MONEY_IN_TEXT.search(text) is not None
    if kind == "date":
        return _DAY_IN_TEXT.search(text) is not None
    if kind == "year":
        return re.search(r"\b(1[89]|20)\d\d\b", text) is not None
    if kind == "percent":
        return re.search(r"\d\s*(%|percent)", text, re.IGNORECASE) is not None
    words = r"\b(one|two|three|four|five|six|seven|eight|nine|ten)\b"
    return bool(numbers_of(text)) or re.search(words, text, re.IGNORECASE) is not None


def modifier_names(question: str) -> list[str]:
    """Names the question uses to describe something rather than to name it: after a determiner and before
    a common noun ("the Windows maker", "which Japanese conglomerate"), or possessive before one
    ("Redmond's hosting platform"). A paraphrase may use them where the documents never do.

    Example: modifier_names("When did the Windows maker fund the lab?") -> ['Windows']
    """
    q = plain_hyphens(question)
    tokens = list(re.finditer(r"[A-Za-z0-9][\w'’\-.]*[\w]|[A-Za-z0-9]", q))
    names = set(names_of(q))
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if _base(tokens[i].group(0)) not in names:
            i += 1
            continue
        j = i
        while j + 1 < len(tokens) and _base(tokens[j + 1].group(0)) in names and not _possessive(tokens[j]):
            j += 1  # a run of names: "San Francisco"
        before = tokens[i - 1].group(0).lower() if i > 0 else ""
        after = tokens[j + 1].group(0) if j + 1 < len(tokens) else ""
        noun_after = bool(after) and after[0].islower() and after.lower() not in STOPWORDS
        if noun_after and (before in _DETERMINERS or _possessive(tokens[j])):
            out.extend(_base(t.group(0)) for t in tokens[i : j + 1])
        i = j + 1
    return list(dict.fromkeys(out))


def asked_words(question: str) -> set[str]:
    """The question's stemmed content words, less its names and the words that only ask.

    Example: asked_words("Who founded G42?") -> {'found'}
    """
    names = {stem(n) for n in names_of(question)} | {n.lower() for n in names_of(question)}
    words = content_words(question)
    return {w for w in words if w not in names and w not in _ASKING and not numbers_of(w)}


def mentions(words: set[str], stems: set[str]) -> bool:
    """Whether any of `words` occurs among `stems`, allowing a stem and its longer form (ouster/oust).

    Example: mentions({"specialize"}, {"specializ", "machine"}) -> True
    """
    for w in words:
        for s in stems:
            short, long_ = sorted((w, s), key=len)
            if long_.startswith(short) and len(short) >= 4 and len(long_) - len(short) <= 2:
                return True
    return False


def _base(token: str) -> str:
    return re.sub(r"['’]s$", "", token).rstrip(".")


def _possessive(match: re.Match[str]) -> bool:
    return re.search(r"['’]s$", match.group(0)) is not None
