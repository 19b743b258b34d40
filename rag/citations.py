"""Citation verification, independent of the model: parse, check, repair or drop, and decide refusal.

Every sentence of a draft answer that carries a claim must end up cited to a passage that supports it:
its numbers and names appear in the passage and most of its content words do (optionally backed by the
embedder's cosine similarity). A wrong citation is repaired to the passage that best supports the sentence,
or dropped with its sentence; numbers or names found in *no* retrieved passage make the whole answer
unsupported, and the system refuses. Citations are renumbered [1], [2]… in order of appearance and pinned
to the supporting sentence's offsets in the original document. Lexical helpers live in `rag.grounding`.
Not covered: retrieval and generation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from index.records import Hit
from rag.grounding import (
    Grounder,
    Span,
    content_words,
    name_in,
    names_of,
    numbers_of,
    specific_names,
    split_sentences,
)
from rag.questions import answer_type, counted_noun, figure_near, has_answer_type, modifier_names
from rag.records import Citation

REFUSAL_TEXT = "The documents don't say. The closest passages are listed below."

_CITE = re.compile(
    r"\s*(?:\b(?:passages?|sources?)\s*:?\s*)?[\[【(]\s*(?:passages?|sources?|doc(?:ument)?s?)?\s*#?\s*"
    r"(\d{1,2}(?:\s*(?:,|;|and|-|–)\s*\d{1,2})*)\s*[\]】)]",
    re.IGNORECASE,
)
_REFUSAL = re.compile(
    r"(\b(documents?|passages?|sources?|context|texts?|provided information)\b[^.]{0,60}"
    r"\b(do(es)?\s*n[o’']?t|never|fail to)\b[^.]{0,30}"
    r"\b(say|mention|contain|provide|specify|state|include|discuss|cover|address|answer|give)"
    r"|\bno (relevant |specific )?(information|mention|details?|data|answer)\b"
    r"|\bnot (mentioned|provided|specified|stated|available|found|given|included|discussed)\b"
    r"|\b(cannot|can ?not|can[’']t|unable to|could ?n[’']t|could not)\s+"
    r"(find|determine|answer|provide|say|tell)\b"
    r"|\bi (do ?n[’']?t|do not) know\b|^\s*(unknown|n/?a)\.?\s*$)",
    re.IGNORECASE,
)
_PREFIX = re.compile(r"^\s*(answer|response|final answer)\s*:\s*", re.IGNORECASE)
MIN_OVERLAP = 0.5  # share of a sentence's content words that its passage must contain
MIN_OVERLAP_WITH_COSINE = 0.3  # ...or this much, when the embedder also finds the sentence close
MIN_COSINE = 0.6


@dataclass(frozen=True)
class Claim:
    """One sentence of the draft: its text without markers and the passage numbers it cited."""

    text: str
    cited: tuple[int, ...]


@dataclass(frozen=True)
class Verdict:
    text: str
    citations: tuple[Citation, ...]
    refused: bool
    notes: tuple[str, ...] = ()


@dataclass
class _Support:
    ok: bool
    score: float
    quote: Span | None = None
    missing: list[str] = field(default_factory=list)


def parse_claims(draft: str) -> list[Claim]:
    """Split a draft into sentences and pull out their bracketed citations.

    Example: parse_claims("A is 1 [2]. B [1, 3].") -> [Claim("A is 1.", (2,)), Claim("B.", (1, 3))]
    """
    text = _PREFIX.sub("", draft.strip())
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
        bare = _CITE.sub("", sentence).strip()
        bare = re.sub(r"\s+([.,;:!?])", r"\1", bare)
        if not bare.strip(" .,;:!?"):
            if claims and nums:  # markers after the full stop belong to the previous sentence
                prev = claims[-1]
                claims[-1] = Claim(prev.text, tuple(dict.fromkeys(prev.cited + tuple(nums))))
            continue
        claims.append(Claim(bare, tuple(dict.fromkeys(nums))))
    return claims


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


def is_refusal(text: str) -> bool:
    """Whether the model itself said the documents don't contain the answer."""
    return bool(_REFUSAL.search(text))


def has_claim(text: str) -> bool:
    """A sentence states something checkable: two or more content words, or a number."""
    return bool(numbers_of(text)) or len(content_words(text)) >= 2


def refusal(notes: Sequence[str] = ()) -> Verdict:
    return Verdict(REFUSAL_TEXT, (), True, tuple(notes))


def verify(draft: str, question: str, hits: Sequence[Hit], grounder: Grounder | None = None) -> Verdict:
    """Check and repair the citations of `draft` against `hits` (numbered 1..n); refuse when ungrounded.

    Example: verify("It invested $650 million [2].", q, hits) -> Verdict("It invested $650 million [1].",
             (Citation(n=1, source=<the hit that says $650 million>, ...),), refused=False)
    """
    grounder = grounder or Grounder()
    notes: list[str] = []
    if not hits:
        return refusal(["no passages retrieved"])
    if not draft.strip() or is_refusal(draft):
        said = "the model said the documents don't contain the answer"
        return refusal([said if draft.strip() else "empty draft"])
    claims = parse_claims(draft)
    everything = " \n ".join(h.chunk.text for h in hits)
    all_numbers = numbers_of(everything)
    kept: list[tuple[str, list[tuple[int, Span]]]] = []
    for claim in claims:
        if not has_claim(claim.text):
            continue
        missing = [f"{n:g}" for n in numbers_of(claim.text) if n not in all_numbers]
        missing += [n for n in names_of(claim.text) if not (name_in(n, everything) or name_in(n, question))]
        if missing:
            return refusal([f"unsupported: {', '.join(map(str, missing))} appear in no retrieved passage"])
        support = [_support(claim.text, h, grounder) for h in hits]
        good = [i for i in claim.cited if 1 <= i <= len(hits) and support[i - 1].ok]
        for i in claim.cited:
            if i not in good:
                notes.append(f"dropped citation [{i}] from {claim.text[:40]!r}")
        if not good:
            supported = [i for i, s in enumerate(support, 1) if s.ok]
            ranked = sorted(supported, key=lambda i: -support[i - 1].score)
            if not ranked:
                joined = _joined_support(claim, hits, grounder)
                if joined:
                    notes.append(f"cited {''.join(f'[{i}]' for i, _ in joined)} for the parts of "
                                 f"{claim.text[:40]!r}")
                    kept.append((claim.text, joined))
                else:
                    notes.append(f"dropped unsupported sentence {claim.text[:60]!r}")
                continue
            good = ranked[:1]
            notes.append(f"cited [{good[0]}] for {claim.text[:40]!r}")
        kept.append((claim.text, [(i, support[i - 1].quote or (0, 0)) for i in good]))
    if not kept:
        return refusal([*notes, "no sentence of the draft is supported by the passages"])
    text, citations = _render(kept, hits)
    return Verdict(text, citations, False, tuple(notes))


def check_answer(verdict: Verdict, question: str, hits: Sequence[Hit] = ()) -> Verdict:
    """Refuse a grounded answer that does not answer *this* question.

    A question asking for a figure (cost, year, count) needs one in the answer, and the names the question
    asks about must appear in the answer or in the passages it cites ("What does Copilot cost?" is not
    answered by a sentence about Inflection's funding, however well cited).
    """
    if verdict.refused:
        return verdict
    asked = re.sub(r"\(context:.*\)", "", question)
    kind = answer_type(asked)
    if not has_answer_type(verdict.text, kind):
        return refusal([*verdict.notes, f"the question asks for a {kind} and the answer gives none"])
    evidence = verdict.text + " " + " ".join(_context(c, hits) for c in verdict.citations)
    sentences = [h.chunk.text[s:e] for h in hits for s, e in split_sentences(h.chunk.text)]
    everywhere = " ".join(h.chunk.text for h in hits)
    descriptive = [n for n in modifier_names(asked) if hits and not name_in(n, everywhere)]
    names = [n for n in specific_names(asked, sentences) if n not in descriptive]
    missing = [n for n in names if not name_in(n, evidence)]
    if missing:
        return refusal([*verdict.notes, f"the answer does not address {', '.join(missing)}"])
    if kind in ("money", "count", "percent") and not (
        figure_near(verdict.text, names) or any(figure_near(c.quote, names) for c in verdict.citations)
    ):
        return refusal([*verdict.notes, f"no figure in the answer is stated about {', '.join(names)}"])
    if kind == "count" and counted_noun(asked) not in content_words(evidence):
        return refusal([*verdict.notes, "the answer does not count what was asked"])
    return verdict


# Clause boundaries only: a semicolon, a comma before a conjunction, or "and" before a verb, never inside a
# list ("Anthropic and others") or before "which" (a relative clause leaves its subject behind).
_CLAUSE = re.compile(r"\s*;\s*|,\s+(?:and|while|but|whereas)\s+"
                     r"|\s+and\s+(?=(?:has|have|had|is|was|were|are|also|then|later)\b)")


def _joined_support(claim: Claim, hits: Sequence[Hit], grounder: Grounder) -> list[tuple[int, Span]]:
    """Citations for a sentence that joins facts from two passages ("X did A in 2019; it did B"): each
    clause must be supported by some passage, the cited one first. Empty when a clause is not."""
    clauses = _CLAUSE.split(claim.text)
    if len(clauses) < 2 or not all(numbers_of(c) or len(content_words(c)) >= 3 for c in clauses):
        return []
    refs: list[tuple[int, Span]] = []
    for clause in clauses:
        support = [_support(clause, h, grounder) for h in hits]
        ok = [i for i, s in enumerate(support, 1) if s.ok]
        if not ok:
            return []
        best = next((i for i in claim.cited if i in ok), max(ok, key=lambda i: support[i - 1].score))
        refs.append((best, support[best - 1].quote or (0, 0)))
    return list(dict.fromkeys(refs))


def _context(citation: Citation, hits: Sequence[Hit]) -> str:
    """The cited sentence and its neighbours ("The company has engaged…" is named one sentence before)."""
    for hit in hits:
        if hit.chunk.id == citation.chunk_id:
            spans = split_sentences(hit.chunk.text)
            start, end = citation.start - hit.chunk.start, citation.end - hit.chunk.start
            near = [j for j, (s, e) in enumerate(spans) if e > start and s < end]
            if near:
                lo, hi = max(0, near[0] - 1), min(len(spans) - 1, near[-1] + 1)
                return hit.chunk.text[spans[lo][0] : spans[hi][1]]
    return citation.quote


def _support(claim: str, hit: Hit, grounder: Grounder) -> _Support:
    """How well one passage supports one sentence; `ok` needs its numbers, names and most content words."""
    passage = hit.chunk.text
    numbers = numbers_of(passage)
    missing = [str(n) for n in numbers_of(claim) if n not in numbers]
    missing += [n for n in names_of(claim) if not name_in(n, passage)]
    words = content_words(claim)
    best = grounder.best_sentence(claim, hit)
    # Facts are bound to who they are about: the claim's numbers and names must occur *together* in one
    # passage sentence (two adjacent ones when there is no number), not scattered over the chunk.
    bound = grounder.bound_span(claim, hit)
    if bound is None and (numbers_of(claim) or names_of(claim)):
        missing.append("numbers and names not stated together")
    overlap = len(words & content_words(passage)) / max(1, len(words))
    cosine = best.cosine
    close = overlap >= MIN_OVERLAP_WITH_COSINE and cosine >= MIN_COSINE
    ok = not missing and (overlap >= MIN_OVERLAP or close)
    quote = best.span if bound is None or _inside(best.span, bound) else bound
    return _Support(ok, overlap + 0.5 * max(0.0, cosine) + best.overlap, quote, missing)


def _inside(span: Span, outer: Span) -> bool:
    return outer[0] <= span[0] and span[1] <= outer[1]


def _render(
    kept: list[tuple[str, list[tuple[int, Span]]]], hits: Sequence[Hit]
) -> tuple[str, tuple[Citation, ...]]:
    """Rebuild the answer with citations renumbered by first appearance."""
    numbers: dict[tuple[str, int], int] = {}
    citations: list[Citation] = []
    parts: list[str] = []
    for text, refs in kept:
        marks = []
        for i, (start, end) in refs:
            chunk = hits[i - 1].chunk
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
