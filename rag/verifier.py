"""The one place that decides: answer or decline, which passage each sentence cites, and why.

Checks, all domain-general:
1. Off-topic floor: the best passage's dense similarity must reach RAG_MIN_RELEVANCE.
2. Structured decline: a draft that starts with the decline marker the prompt asks for is a decline, and
   so is one whose first token gave the marker more than RAG_MAX_DECLINE of its probability (the model
   doubted there was an answer; rag/confidence.py).
3. Figures and names: every figure of a sentence, and every name it does not take from the question, must
   stand in one window (a sentence, or two adjacent ones) of the passage it cites. When the cited passage
   has no such window and another does, the citation is repaired to that one.
4. Echoes: a sentence that only repeats the question's words (with a yes or no) states nothing from a
   source, and is dropped.
5. Semantic support: the judge (rag/judge.py) must find that the window states the sentence *as the answer
   to this question*, with a score of at least RAG_MIN_SUPPORT. A sentence that fails is dropped; an
   answer with no sentence left is declined.
The result is a `Decision` with typed `Reason`s; the pipeline, UI, API and eval read it and never re-decide.
Not covered: retrieval, prompting and generation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from index.records import Hit
from rag.claims import Claim, parse_claims, render
from rag.confidence import Confidence
from rag.grounding import Grounder, Span, content_words, name_in, names_of, numbers_of
from rag.judge import SupportJudge
from rag.records import DECLINE_MARKER, Citation, Question, Reason

REFUSAL_TEXT = "The documents don't say."
MAX_CLAIMS = 3  # sentences judged per answer; the prompt asks for one
MAX_JUDGE_CALLS = 3  # per answer: each call costs ~0.5-1.5 s on 2 cores


@dataclass(frozen=True)
class Decision:
    """The verdict on one draft: the text to show, its citations, and the reasons behind it."""

    answered: bool
    text: str
    citations: tuple[Citation, ...] = ()
    reasons: tuple[Reason, ...] = ()
    support: tuple[float, ...] = ()  # the best judge score of each judged sentence, kept or not


def decline(*reasons: Reason) -> Decision:
    return Decision(False, REFUSAL_TEXT, (), tuple(dict.fromkeys(reasons)))


def is_decline(draft: str) -> bool:
    """Whether the model wrote the decline marker (case and punctuation aside) instead of an answer.

    Example: is_decline("Unanswerable.") -> True; is_decline("No, it cannot run in a transaction.") -> False
    """
    words = re.sub(r"[^a-z ]", " ", draft.lower()).split()
    marker = DECLINE_MARKER.lower().split()
    return words[: len(marker)] == marker


def has_claim(text: str) -> bool:
    """A sentence states something checkable: a number, a name or a content word ("Phi-3." is an answer;
    "Yes." alone is not)."""
    return bool(numbers_of(text) or names_of(text) or content_words(text))


_POINTS_BACK = re.compile(r"\W*(it|its|they|their|them|this|these|that|those|he|his|she|her|such|"
                          r"the (company|firm|group|latter|former|same))\b", re.IGNORECASE)


@dataclass(frozen=True)
class _Window:
    index: int  # passage index (0-based) in the numbered passages
    span: Span  # the quote within the chunk text
    score: float


def _with_table_header(text: str, start: int, end: int) -> str:
    """text[start:end], with its table's header line in front when it is a table row that is not the
    header: "| Leeds | 350 GBP |" alone does not say what 350 GBP is."""
    body = text[start:end]
    if not body.lstrip().startswith("|"):
        return body
    line_start = text.rfind("\n", 0, start) + 1
    header = line_start
    while header > 0:
        previous = text.rfind("\n", 0, header - 1) + 1
        if not text[previous : header - 1].lstrip().startswith("|"):
            break
        header = previous
    if header == line_start:
        return body
    return text[header : text.find("\n", header)].strip() + "\n" + body


# A polarity word is the yes/no of an echo, not something a source said: "No, you don't need to call done()
# yourself" to "do I need to call done() myself?" adds only the "don't".
_NEGATION = re.compile(r"(?i)(?:\w+n['’]t|cannot|never|neither|nor)")


def _echo(claim: Claim, question: Question) -> Reason | None:
    """ECHOES_QUESTION when the sentence adds no word and no figure to the question it answers.

    "Yes, you can get an e-bike through the lease scheme in Manchester" to "Can I get an e-bike through the
    lease scheme in Manchester?" states nothing a source said; only its yes/no is new, and the judge cannot
    check a bare polarity reliably (on the tuning halves it scored such echoes 0.46-0.70, right and wrong
    alike). Reading the yes/no off the source instead was tried and measured: the same model asked "yes, no
    or unclear?" of the sentence that best matches the question gave the draft's polarity 0.38-0.80 of the
    probability on right drafts and 0.37-0.83 on wrong ones (29 echoes over the tuning and held-out halves),
    so no threshold separates them. Quoting instead the best-matching source sentence whose negation agrees
    with the draft, when the support judge finds it answers the question, gained 1 right answer and added 5
    wrong ones over the same 29 echoes. So echoes stay declined. A choice question ("… per file or per
    upload?") is answered in its own words, so it is exempt.
    Example: _echo(Claim("No, contractors do not get it.", ()), Question("Do contractors get it?")) -> ECHOES…
    """
    asked = f"{question.text} {question.context}"
    if re.search(r"\bor\b", question.text, re.IGNORECASE):
        return None
    said = {w for w in content_words(claim.text) if not _NEGATION.fullmatch(w)}
    if said - content_words(asked) or numbers_of(claim.text) - numbers_of(asked):
        return None
    return Reason.ECHOES_QUESTION


class Verifier:
    def __init__(self, judge: SupportJudge, grounder: Grounder | None = None, min_support: float = 0.5,
                 min_relevance: float = 0.1, max_decline: float = 1.0) -> None:
        self.judge = judge
        self.grounder = grounder or Grounder()
        self.min_support = min_support
        self.min_relevance = min_relevance
        self.max_decline = max_decline

    def screen(self, hits: Sequence[Hit]) -> Decision | None:
        """A decline when retrieval found nothing worth answering from, else None (go on and generate)."""
        if not hits:
            return decline(Reason.NO_PASSAGES)
        dense = [h.scores["dense"] for h in hits if "dense" in h.scores]
        if dense and max(dense) < self.min_relevance:
            return decline(Reason.OFF_TOPIC)
        return None

    def decide(self, draft: str, question: Question, passages: Sequence[Hit],
               confidence: Confidence | None = None, min_support: float | None = None) -> Decision:
        """Verify `draft` (citing passages[i] as [i + 1]) against the passages and the question; `confidence`
        is what the model's token probabilities said about the draft, when the backend reported them;
        `min_support` overrides the judge threshold (a second draft is held to its own)."""
        needed = self.min_support if min_support is None else min_support
        if not passages:
            return decline(Reason.NO_PASSAGES)
        if is_decline(draft):
            return decline(Reason.MODEL_DECLINED)
        if confidence is not None and confidence.decline > self.max_decline:
            return decline(Reason.MODEL_UNSURE)
        claims = [c for c in parse_claims(draft) if has_claim(c.text)][:MAX_CLAIMS]
        if not claims:
            return decline(Reason.EMPTY_DRAFT)
        everything = " \n ".join(h.chunk.text for h in passages)
        kept: list[tuple[str, list[tuple[Hit, Span]]]] = []
        reasons: list[Reason] = []
        scores: list[float] = []
        calls = 0
        for claim in claims:
            problem = self._lexical(claim, question, everything) or _echo(claim, question)
            if problem is not None:
                reasons.append(problem)
                continue
            windows = self._windows(claim, question, passages)
            accepted: _Window | None = None
            best = 0.0
            for window in windows[:2]:
                if calls >= MAX_JUDGE_CALLS:
                    break
                calls += 1
                evidence = self._evidence(passages[window.index], window.span)
                score = self.judge.support(question.text, claim.text, evidence)
                best = max(best, score)
                if score >= needed:
                    accepted = window
                    break
            if windows:
                scores.append(best)
            if accepted is None:
                reasons.append(Reason.NOT_STATED)
                continue
            if accepted.index + 1 not in claim.cited:
                reasons.append(Reason.CITATION_REPAIRED if claim.cited else Reason.CITATION_ADDED)
            kept.append((claim.text, [(passages[accepted.index], accepted.span)]))
        if not kept:
            declined = decline(Reason.UNSUPPORTED, *reasons)
            return Decision(False, declined.text, (), declined.reasons, tuple(scores))
        if len(kept) < len(claims):
            reasons.append(Reason.SENTENCE_DROPPED)
        text, citations = render(kept)
        return Decision(True, text, citations, tuple(dict.fromkeys(reasons)), tuple(scores))

    # --- checks --------------------------------------------------------------------------------------
    @staticmethod
    def _names(claim: Claim, question: Question) -> list[str]:
        """The claim's names that it does not take from the question ("PTO" asked about stays unchecked)."""
        asked = f"{question.text} {question.context}"
        return [n for n in names_of(claim.text) if n.lower() != "ai" and not name_in(n, asked)]

    def _lexical(self, claim: Claim, question: Question, everything: str) -> Reason | None:
        if numbers_of(claim.text) - numbers_of(everything):
            return Reason.FIGURE_NOT_IN_SOURCE
        if any(not name_in(n, everything) for n in self._names(claim, question)):
            return Reason.NAME_NOT_IN_SOURCE
        return None

    def _windows(self, claim: Claim, question: Question, passages: Sequence[Hit]) -> list[_Window]:
        """Per passage, the best window holding all the claim's figures and names; cited passages first."""
        figures, names = numbers_of(claim.text), self._names(claim, question)
        words = content_words(claim.text) | content_words(question.text)
        found: list[_Window] = []
        for index, hit in enumerate(passages):
            text = hit.chunk.text
            spans = self.grounder.sentences(hit)
            windows = spans + [(spans[j][0], spans[j + 1][1]) for j in range(len(spans) - 1)]
            best: _Window | None = None
            for s, e in windows:
                window = text[s:e]
                if figures - numbers_of(window) or not all(name_in(n, window) for n in names):
                    continue
                score = len(words & content_words(window)) / max(1, len(words)) - 0.0005 * (e - s) / 10
                if best is None or score > best.score:
                    best = _Window(index, (s, e), score)
            if best is not None:
                found.append(best)
        cited = {i - 1: rank for rank, i in enumerate(claim.cited)}
        return sorted(found, key=lambda w: (w.index not in cited, cited.get(w.index, 0), -w.score))

    def _evidence(self, hit: Hit, span: Span) -> str:
        """The window, with the sentence before it when the window opens by pointing back ("It…", "They…").

        Only then: an unrelated sentence in front measurably lowers the judge's score for a true claim.
        """
        spans = self.grounder.sentences(hit)
        start = span[0]
        before = [s for s, e in spans if e <= span[0]]
        if before and _POINTS_BACK.match(hit.chunk.text[span[0] : span[1]]):
            start = before[-1]
        title = hit.chunk.title.strip()
        body = _with_table_header(hit.chunk.text, start, span[1])
        return f"({title}) {body}" if title and title.lower() not in body.lower() else body
