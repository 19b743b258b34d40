"""`extractive` backend: no language model; proposes the passage sentence that best matches the question.

Sentences are scored by IDF-weighted word overlap with the question plus, when the pipeline passes a
`Grounder` with an embedder (`request.extras["grounder"]`), cosine similarity. The best sentence (and a
second one about as good, from elsewhere) is emitted verbatim with its passage number; below
`RAG_EXTRACTIVE_MIN_SCORE` it writes the decline marker. Whether the sentence answers the question is the
verifier's call (rag/verifier.py), as for every backend.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rag.config import Config
from rag.generators import GenerationRequest
from rag.grounding import Grounder, content_words, is_heading
from rag.records import DECLINE_MARKER

SECOND_RATIO = 0.97  # a second sentence must score nearly as well as the first


class ExtractiveGenerator:
    name = "extractive"

    def __init__(self, config: Config) -> None:
        self.config = config

    @property
    def ready(self) -> bool:
        return True

    def warm_up(self) -> None:
        """Nothing to load."""

    def answer(self, request: GenerationRequest) -> str:
        """The whole answer text (what `stream` yields, joined)."""
        grounder = request.extras.get("grounder") or Grounder()
        hits = list(request.passages)
        asked = f"{request.question} {request.extras.get('context', '')}".strip()
        picked: list[tuple[float, int, str]] = []
        for score, i, (s, e) in grounder.rank_sentences(asked, hits)[:12]:
            sentence = _tidy(hits[i].chunk.text[s:e])
            if score < self.config.extractive_min_score or len(content_words(sentence)) < 3:
                continue
            if sentence.endswith("?") or is_heading(sentence, hits[i].chunk.title):
                continue  # a question or a heading in the document answers nothing
            if picked and (score < SECOND_RATIO * picked[0][0] or _redundant(sentence, picked)):
                continue
            picked.append((score, i, sentence))
            if len(picked) == 2:
                break
        if not picked:
            return DECLINE_MARKER
        return " ".join(f"{_without_end(text)} [{i + 1}]." for _, i, text in picked)

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        yield from re.findall(r"\S+\s*", self.answer(request))


def _tidy(sentence: str) -> str:
    return re.sub(r"^\s*[-*•]\s+", "", " ".join(sentence.split()))


def _without_end(text: str) -> str:
    return text.rstrip().rstrip(".!?;:")


def _redundant(sentence: str, picked: list[tuple[float, int, str]]) -> bool:
    words = content_words(sentence)
    return any(len(words & content_words(t)) >= 0.4 * max(1, len(words)) for _, _, t in picked)
