"""Evidence helpers shared by the verifier, prompt trimming and the extractive backend.

Sentences with offsets, content words (light stemming, no stopwords), numbers normalised to values
("$1.5 billion" -> 1.5e9), names (capitalised or alphanumeric tokens such as "G42"), and a `Grounder` that
ranks passage sentences against a question, optionally with the retriever's embedder (sentence embeddings are
cached per chunk). Not covered: deciding what to cite (rag/verifier.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from index.records import Hit

Span = tuple[int, int]

STOPWORDS = frozenset("""
a about above after again against all also am an and any are aren't as at be because been before
being below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself just
let me more most my myself no nor not now of off on once only or other our ours ourselves out over
own same she should so some such than that the their theirs them themselves then there these they
this those through to too under until up very was we were what when where which while who whom why
will with would you your yours yourself yourselves yes per via among amid within according based
said says say tell told much many one ones thing things like well way really since upon onto
""".split())
# Capitalised words that start sentences or questions rather than name something.
_NOT_NAMES = STOPWORDS | frozenset("""
however moreover overall additionally although despite while meanwhile furthermore therefore thus yes no
according answer based documents document passage passages source sources question note also first second
""".split())
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "bn": 1e9, "mn": 1e6}
_NUMBER = re.compile(
    r"(?<![\w.\-])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?!\.?\w*-)"
    r"(?:\s*(%|percent\b)|\s*(thousand|million|billion|trillion|bn|mn)\b)?",
    re.IGNORECASE,
)
# Spelled-out numbers, so "ten days" and "10 days" state the same figure. "one" is left out: "one of the…"
# is not a figure, and treating it as 1 would demand a 1 in the passage.
_WORD_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split()) if i >= 2}
_TENS = "thirty forty fifty sixty seventy eighty ninety".split()
_WORD_NUMBERS.update({w: 10 * i for i, w in enumerate(_TENS, 3)})
_UNIT_WORDS = "one|two|three|four|five|six|seven|eight|nine"
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_WORD_NUMBERS) + r")(?:[-\s](" + _UNIT_WORDS + r"))?\b",
                          re.IGNORECASE)
_UNITS = {w: i for i, w in enumerate(_UNIT_WORDS.split("|"), 1)}
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’\-]*[A-Za-z0-9]|[A-Za-z]")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-.]*[A-Za-z0-9]|[A-Za-z0-9]")
_DASHES = re.compile("[\u2010\u2011\u2012\u2013\u2014]")  # hyphen, non-breaking hyphen, figure/en/em dash
_SMALL_WORDS = frozenset("a an and as at by for from in into of on or the to with vs".split())
_BOUNDARY = re.compile(r"(?<=[.!?])[\"”’)\]]*\s+(?=[\"“(\[]?[A-Z0-9$])|\n+")


def plain_hyphens(text: str) -> str:
    """Typographic hyphens and dashes as "-", soft hyphens removed (for matching, not for offsets).

    Example: plain_hyphens("Microsoft\u2011OpenAI") -> 'Microsoft-OpenAI'
    """
    return _DASHES.sub("-", text.replace("\u00ad", ""))


def is_heading(sentence: str, title: str = "") -> bool:
    """Whether a passage "sentence" is a title or heading rather than a statement: the chunk's title, or
    Title Case words with no closing punctuation (a "Label: value" line is data, not a heading).

    Example: is_heading("Public Reactions to the Deal") -> True
    """
    text = " ".join(sentence.split()).strip(" -*•#")
    if title and text.rstrip(".:").lower() == " ".join(title.split()).lower():
        return True
    if not text or ": " in text or text[-1] in ".!?\"”":
        return False
    words = [w for w in re.findall(r"[A-Za-z][\w'’\-]*", text) if w.lower() not in _SMALL_WORDS]
    return len(words) >= 2 and sum(w[0].isupper() for w in words) >= 0.8 * len(words)


def split_sentences(text: str) -> list[Span]:
    """Sentence spans (start, end) of `text`, trimmed of surrounding space.

    Example: split_sentences("It rose 1.5%. Then fell.") -> [(0, 13), (14, 24)]
    """
    spans: list[Span] = []
    pos = 0
    for m in _BOUNDARY.finditer(text):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def stem(word: str) -> str:
    """Crude English stemming, enough to match invest/invested/investment.

    Example: stem("investments") -> 'invest'
    """
    w = word.lower().replace("’", "'")
    w = re.sub(r"'s?$", "", w)
    suffixes = (("ments", ""), ("ment", ""), ("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""))
    for suffix, repl in suffixes:
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not (suffix == "s" and w.endswith("ss")):
            return w[: len(w) - len(suffix)] + repl
    return w


def content_words(text: str) -> set[str]:
    """Stemmed words of `text` without stopwords. Example: content_words("The investments") -> {'invest'}."""
    words = _WORD.findall(plain_hyphens(text))
    return {stem(w) for w in words if w.lower() not in STOPWORDS and len(w) > 1}


def numbers_of(text: str) -> set[float]:
    """Numbers in `text` as values, spelled-out ones included, ignoring those glued to words (G42, Phi-3).

    Example: numbers_of("$1.5 billion in 2019, 20% and ten days") -> {1500000000.0, 2019.0, 20.0, 10.0}
    """
    values = set()
    for m in _NUMBER_WORD.finditer(text):
        tens = _WORD_NUMBERS[m.group(1).lower()]
        unit = _UNITS[m.group(2).lower()] if m.group(2) and tens >= 20 else 0
        values.add(float(tens + unit))
    for m in _NUMBER.finditer(text):
        value = float(m.group(1).replace(",", ""))
        if m.group(3):
            value *= _SCALE[m.group(3).lower()]
        values.add(round(value, 6))
    return values


def names_of(text: str) -> list[str]:
    """Names in a sentence: capitalised words not opening it, and tokens mixing letters and digits.

    Example: names_of("Microsoft invested in G42 and Mistral.") -> ['G42', 'Mistral']
    """
    found: list[str] = []
    text = plain_hyphens(text)
    for i, m in enumerate(_TOKEN.finditer(text)):
        token = re.sub(r"['’]s$", "", m.group(0)).rstrip(".")
        mixed = any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
        capital = token[:1].isupper() and token.lower() not in _NOT_NAMES
        opener = i == 0 or text[: m.start()].rstrip().endswith((":", '"', "“"))
        if mixed or (capital and not opener):
            parts = token.split("-")
            if not mixed and len(parts) > 1 and all(p[:1].isupper() for p in parts):
                found.extend(parts)  # "Microsoft-OpenAI" names two things
            else:
                found.append(token)
    return list(dict.fromkeys(found))


def name_in(name: str, text: str) -> bool:
    """Whether a name occurs in `text` as a word (case-insensitive)."""
    text = plain_hyphens(text).lower()  # documents write typographic hyphens
    return re.search(r"(?<![\w])" + re.escape(plain_hyphens(name).lower()) + r"(?![\w])", text) is not None


class Grounder:
    """Scores chunk sentences against texts; embeddings of chunk sentences are cached per chunk id."""

    def __init__(self, embedder: Any | None = None, cache_size: int = 4096) -> None:
        self.embedder = embedder
        self._sentences: dict[str, list[Span]] = {}
        self._vectors: dict[str, np.ndarray] = {}
        self._cache_size = cache_size

    def sentences(self, hit: Hit) -> list[Span]:
        key = hit.chunk.id
        if key not in self._sentences:
            if len(self._sentences) > self._cache_size:
                self._sentences.clear()
                self._vectors.clear()
            self._sentences[key] = split_sentences(hit.chunk.text) or [(0, len(hit.chunk.text))]
        return self._sentences[key]

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        if self.embedder is None or not texts:
            return None
        return np.asarray(self.embedder.embed(list(texts)), dtype=np.float32)

    def vectors(self, hits: Sequence[Hit]) -> list[np.ndarray | None]:
        """Sentence embeddings per hit, computing the missing ones in one batch."""
        if self.embedder is None:
            return [None] * len(hits)
        todo = [h for h in dict.fromkeys(hits) if h.chunk.id not in self._vectors]
        texts = [h.chunk.text[s:e] for h in todo for s, e in self.sentences(h)]
        if texts:
            matrix = self.embed(texts)
            assert matrix is not None
            row = 0
            for h in todo:
                n = len(self.sentences(h))
                self._vectors[h.chunk.id] = matrix[row : row + n]
                row += n
        return [self._vectors[h.chunk.id] for h in hits]

    def rank_sentences(self, question: str, hits: Sequence[Hit]) -> list[tuple[float, int, Span]]:
        """Every sentence of `hits` scored against a question, best first: (score, hit index, span).

        The score mixes IDF-weighted word overlap (IDF over these sentences) with the embedder's cosine,
        Headings and fragments are pushed down: they name a topic and state nothing.
        """
        q_words = content_words(question)
        items = [(i, span, hit.chunk.text[span[0] : span[1]]) for i, hit in enumerate(hits)
                 for span in self.sentences(hit)]
        if not items:
            return []
        bags = [content_words(t) for _, _, t in items]
        df = {w: sum(w in b for b in bags) for w in q_words}
        idf = {w: math.log(1 + len(bags) / (1 + df[w])) for w in q_words}
        total = sum(idf.values()) or 1.0
        cos_rows: list[np.ndarray | None] = [None] * len(hits)
        qvec = self.embed([question]) if self.embedder is not None else None
        if qvec is not None:
            cos_rows = [None if v is None else v @ qvec[0] for v in self.vectors(hits)]
        out = []
        offsets: dict[int, int] = {}
        for (i, span, text), bag in zip(items, bags, strict=True):
            j = offsets.get(i, 0)
            offsets[i] = j + 1
            lexical = sum(idf[w] for w in q_words & bag) / total
            row = cos_rows[i]
            cosine = float(row[j]) if row is not None else 0.0
            score = 0.6 * lexical + 0.4 * cosine if qvec is not None else lexical
            if is_heading(text, hits[i].chunk.title):
                score -= 0.3  # a heading names a topic, it states nothing
            elif len(text) < 25:  # fragments
                score -= 0.1
            out.append((score, i, span))
        out.sort(key=lambda t: -t[0])
        return out
