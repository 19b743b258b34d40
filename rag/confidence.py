"""What the model's own token probabilities say about its draft: read from the stream, at no extra cost.

A backend that can return log-probabilities (llama.cpp and OpenAI-compatible servers both can) records each
generated token with its top alternatives into a `TokenLog` the pipeline hands it. `confidence()` turns the
log into a typed `Confidence`: how much probability the model gave to declining at its first token (the
decline marker the prompt asks for), and how sure it was of the answer's own words. Greedy decoding only
shows the top choice; a model that put 40% on "UNANSWERABLE" and 45% on "The" wrote an answer it doubted,
and that doubt is a domain-general signal no lexical rule gives. The verifier (rag/verifier.py) reads it
against thresholds from the config (calibrated by scripts/calibrate.py on tuning halves of several corpora).
Not covered: which backends fill the log (rag/generators/*), what is decided from it (rag/verifier.py).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TOP_LOGPROBS = 10  # alternatives asked for per token: the decline marker is among them when it is plausible


@dataclass(frozen=True)
class TokenChoice:
    """One generated token, its log-probability and the top alternatives (token -> log-probability)."""

    token: str
    logprob: float
    top: Mapping[str, float]


class TokenLog:
    """Filled by a backend while it streams (thread-safe: llama.cpp calls back from its own thread)."""

    def __init__(self) -> None:
        self._tokens: list[TokenChoice] = []
        self._lock = threading.Lock()

    def add(self, choice: TokenChoice) -> None:
        with self._lock:
            self._tokens.append(choice)

    def add_openai(self, logprobs: Any) -> None:
        """Record the tokens of one OpenAI-shaped `choices[i].logprobs` object (streamed or not)."""
        for item in (logprobs or {}).get("content") or ():
            top = {str(t.get("token", "")): float(t.get("logprob", -100.0))
                   for t in item.get("top_logprobs") or ()}
            self.add(TokenChoice(str(item.get("token", "")), float(item.get("logprob", -100.0)), top))

    @property
    def tokens(self) -> tuple[TokenChoice, ...]:
        with self._lock:
            return tuple(self._tokens)


@dataclass(frozen=True)
class Confidence:
    """The model's certainty about its draft.

    decline: probability of the decline marker's first token at the draft's first position (0..1).
    answer_logprob: mean log-probability of the answer's tokens before its first citation (<= 0).
    answer_min_logprob: the least likely of those tokens: the one spot where the model hesitated most.
    tokens: how many answer tokens the means are over.
    """

    decline: float
    answer_logprob: float
    answer_min_logprob: float
    tokens: int

    def to_json(self) -> dict[str, float | int]:
        return {"decline": round(self.decline, 4), "answer_logprob": round(self.answer_logprob, 4),
                "answer_min_logprob": round(self.answer_min_logprob, 4), "tokens": self.tokens}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Confidence:
        return cls(float(data["decline"]), float(data["answer_logprob"]), float(data["answer_min_logprob"]),
                   int(data["tokens"]))


def _is_marker_start(token: str, marker: str) -> bool:
    """Whether `token` begins the decline marker ("UN" for "UNANSWERABLE"; at least two characters, so a
    stray "U" opening another word does not count).

    Example: _is_marker_start(" UN", "UNANSWERABLE") -> True
    """
    piece = token.strip()
    return len(piece) >= 2 and marker.startswith(piece)


def confidence(tokens: Sequence[TokenChoice], marker: str) -> Confidence | None:
    """The `Confidence` of a draft from its logged tokens; None when the backend logged none.

    Example: confidence([TokenChoice("The", -0.5, {"The": -0.5, "UN": -1.2})], "UNANSWERABLE").decline
    -> 0.30
    """
    content = [t for t in tokens if t.token]
    if not content:
        return None
    first = content[0]
    top = dict(first.top) or {first.token: first.logprob}
    decline = sum(math.exp(lp) for tok, lp in top.items() if _is_marker_start(tok, marker))
    answer: list[float] = []
    for t in content:
        if "[" in t.token:  # the first citation ends the answer's own words
            break
        if t.token.strip():
            answer.append(t.logprob)
    if not answer:
        return Confidence(min(1.0, decline), 0.0, 0.0, 0)
    return Confidence(min(1.0, decline), sum(answer) / len(answer), min(answer), len(answer))


MIN_ALTERNATIVE = 0.05  # an alternative token less likely than this is not a reading the model entertained


def alternative_prefix(tokens: Sequence[TokenChoice], marker: str) -> str | None:
    """The draft's opening up to the answer token where the model hesitated most, with its runner-up token
    in place of the one it wrote; None when it never seriously considered another word.

    Greedy decoding commits to the top token everywhere; when a draft fails verification, the most likely
    *other* reading is the one place a different answer was nearly written ("Satya" where "Mustafa" had
    30%). Whitespace variants, citation brackets and the decline marker are not alternatives.
    Example: alternative_prefix([tok("The"), tok(" fee", top={" fee": -0.9, " cap": -1.2}), ...], m)
    -> 'The cap'
    """
    content = [t for t in tokens if t.token]
    best: tuple[float, int, str] | None = None
    for i, t in enumerate(content):
        if "[" in t.token:
            break
        for tok, lp in t.top.items():
            piece = tok.strip()
            if (tok == t.token or piece == t.token.strip() or not any(ch.isalnum() for ch in piece)
                    or "[" in tok or (i == 0 and _is_marker_start(tok, marker))):
                continue
            p = math.exp(lp)
            if p >= MIN_ALTERNATIVE and (best is None or p > best[0]):
                best = (p, i, tok)
    if best is None:
        return None
    _, i, tok = best
    return "".join(t.token for t in content[:i]) + tok
