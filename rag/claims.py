"""A draft answer as claims: its sentences, the passage numbers each one cites, and how to write it back.

Parsing accepts the citation shapes small models write ("[1]", "[1, 3]", "[Source 2]", "(passage 1)",
"【1】", "[1-3]"), markers after the full stop, and list bullets. Rendering renumbers citations [1], [2]… in
order of first appearance. Not covered: deciding whether a claim is supported (rag/verifier.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from index.records import Hit
from rag.grounding import Span, split_sentences
from rag.records import Citation

_CITE = re.compile(
    r"\s*(?:\b(?:passages?|sources?)\s*:?\s*)?[\[【(]\s*(?:passages?|sources?|doc(?:ument)?s?)?\s*#?\s*"
    r"(\d{1,2}(?:\s*(?:,|;|and|-|–)\s*\d{1,2})*)\s*[\]】)]",
    re.IGNORECASE,
)
_WRAPPED = re.compile(r"\s*\((?:" + _CITE.pattern + r"|\s*[,;]\s*)+\s*\)", re.IGNORECASE)
_PREFIX = re.compile(r"^\s*(answer|response|final answer)\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Claim:
    """One sentence of the draft: its text without markers and the passage numbers it cited."""

    text: str
    cited: tuple[int, ...]


def parse_claims(draft: str) -> list[Claim]:
    """Split a draft into sentences and pull out their bracketed citations.

    Example: parse_claims("A is 1 [2]. B [1, 3].") -> [Claim("A is 1.", (2,)), Claim("B.", (1, 3))]
    """
    text = _unwrap(_PREFIX.sub("", draft.strip()))
    text = re.sub(r"(?m)^\s*(?:[-*•]|\d+[.)])\s+", "", text)  # list bullets
    claims: list[Claim] = []
    for start, end in split_sentences(text):
        sentence = text[start:end]
        lead = re.match(r"(?:" + _CITE.pattern + r")+", sentence, re.IGNORECASE)
        if lead and claims:  # "… Inflection. [1] Then …": the marker closes the previous sentence
            prev = claims[-1]
            extra = tuple(n for m in _CITE.finditer(lead.group(0)) for n in _expand(m.group(1)))
            claims[-1] = Claim(prev.text, tuple(dict.fromkeys(prev.cited + extra)))
            sentence = sentence[lead.end() :]
        nums: list[int] = []
        for m in _CITE.finditer(sentence):
            nums.extend(_expand(m.group(1)))
        bare = _tidy(_CITE.sub("", sentence))
        if not bare.strip(" .,;:!?"):
            if claims and nums:  # markers after the full stop belong to the previous sentence
                prev = claims[-1]
                claims[-1] = Claim(prev.text, tuple(dict.fromkeys(prev.cited + tuple(nums))))
            continue
        claims.append(Claim(bare, tuple(dict.fromkeys(nums))))
    return claims


def strip_citations(text: str) -> str:
    """The text without citation markers. Example: strip_citations("It is 5 (Source [1]).") -> 'It is 5.'"""
    return _tidy(_CITE.sub("", _unwrap(text)))


def _tidy(text: str) -> str:
    """No space before punctuation. Example: _tidy("It is 5 .") -> 'It is 5.'"""
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    return re.sub(r"(?:[,;]\s*)+(?=[.!?]|$)", "", text.strip()).strip()


def _unwrap(text: str) -> str:
    """Parentheses around nothing but markers go: "Phi-3 (Source [2], [3])" -> "Phi-3 Source [2], [3]"."""
    return _WRAPPED.sub(lambda m: " " + m.group(0).strip()[1:-1], text)


def _expand(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*(?:,|;|and)\s*", group):
        bounds = re.split(r"\s*[-–]\s*", part)
        is_range = len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit()
        if is_range and int(bounds[1]) - int(bounds[0]) < 6:
            out.extend(range(int(bounds[0]), int(bounds[1]) + 1))
        elif part.isdigit():
            out.append(int(part))
    return out


def render(kept: Sequence[tuple[str, Sequence[tuple[Hit, Span]]]]) -> tuple[str, tuple[Citation, ...]]:
    """Write sentences back with their citations, numbered by first appearance.

    `kept` holds (sentence, [(hit, span of the supporting quote within hit.chunk.text), ...]).
    Example: render([("It is 5.", [(hit, (0, 9))])]) -> ("It is 5 [1].", (Citation(n=1, ...),))
    """
    numbers: dict[tuple[str, int], int] = {}
    citations: list[Citation] = []
    parts: list[str] = []
    for text, refs in kept:
        marks = []
        for hit, (start, end) in refs:
            chunk = hit.chunk
            key = (chunk.id, start)
            if key not in numbers:
                numbers[key] = len(numbers) + 1
                citations.append(Citation(
                    n=numbers[key], source=chunk.source, chunk_id=chunk.id,
                    start=chunk.start + start, end=chunk.start + end,
                    quote=chunk.text[start:end], title=chunk.title,
                ))
            marks.append(f"[{numbers[key]}]")
        marks = list(dict.fromkeys(marks))
        body = text.rstrip()
        end_punct = body[-1] if body and body[-1] in ".!?" else "."
        body = body.rstrip(".!?;:, ")
        parts.append(f"{body} {''.join(marks)}{end_punct}")
    return " ".join(parts), tuple(citations)
