"""Support judges: how strongly a passage states a sentence *as the answer to the question asked*.

A lexical overlap cannot tell "Nadella backed Altman" from "Altman backed Altman", nor a stock price from a
valuation; no NLI or reranker weights ship on PyPI (see ../shared/MODELS.md), so the semantic judge is the
instruction-tuned generator itself, asked a yes/no question and read as P(yes) / (P(yes) + P(no)) from its
first-token log-probabilities (one token generated, the judge's fixed instructions cached). The score is
compared with `RAG_MIN_SUPPORT` (calibrated by scripts/calibrate.py on tuning halves of several corpora).
`LexicalJudge` is the no-model fallback used with the `extractive` backend. Not covered: which sentence and
passage are judged (rag/verifier.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from string import Template
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from index.errors import ConfigError
from rag.grounding import content_words
from rag.prompt import template

if TYPE_CHECKING:
    from rag.config import Config


@runtime_checkable
class SupportJudge(Protocol):
    name: str

    def support(self, question: str, claim: str, evidence: str) -> float:
        """A score in [0, 1]: how clearly `evidence` states `claim` as the answer to `question`."""
        ...


class ModelJudge:
    """The local GGUF model as a yes/no judge (the same loaded model as the generator when they match)."""

    name = "local"

    def __init__(self, config: Config) -> None:
        self.config = config
        self._model: Any = None

    def _loaded(self) -> Any:
        if self._model is None:
            from rag.generators.local import model_for

            self._model = model_for(self.config, self.config.judge_model or None)
        return self._model

    def warm_up(self) -> None:
        """Load the model and run one judgement, so the few-shot instructions sit in the prompt cache."""
        self.support("Is this a warm-up?", "Yes, it is a warm-up.", "This is a warm-up.")

    def support(self, question: str, claim: str, evidence: str) -> float:
        user = Template(template("judge")).substitute(
            evidence=_one_line(evidence).replace('"""', "''"), question=_one_line(question),
            claim=_one_line(claim))
        body = {
            "messages": [{"role": "system", "content": template("judge_system")},
                         {"role": "user", "content": user}],
            "max_tokens": 1, "temperature": 0.0, "logprobs": True, "top_logprobs": 10,
        }
        return yes_probability(self._loaded().complete(body))


def yes_probability(response: dict[str, Any]) -> float:
    """P(yes) / (P(yes) + P(no)) from an OpenAI-shaped response with top log-probabilities.

    Falls back to the generated word (1.0 / 0.0) when the server returned no log-probabilities.
    Example: yes_probability({"choices": [{"message": {"content": "Yes"}}]}) -> 1.0
    """
    choice = (response.get("choices") or [{}])[0]
    content = ((choice.get("logprobs") or {}).get("content")) or []
    yes = no = 0.0
    if content:
        for option in content[0].get("top_logprobs") or ():
            word = str(option.get("token", "")).strip().lower()
            if word in ("yes", "no"):
                p = math.exp(float(option.get("logprob", -100.0)))
                yes, no = (yes + p, no) if word == "yes" else (yes, no + p)
    if yes + no > 0:
        return yes / (yes + no)
    said = str((choice.get("message") or {}).get("content", "")).strip().lower()
    return 1.0 if said.startswith("yes") else 0.0


class LexicalJudge:
    """No model: the share of the question's and the claim's content words that the evidence contains.

    Weak on paraphrase and blind to who-did-what; used where no model runs (the extractive backend).
    Example: LexicalJudge().support("Where is G42 based?", "G42 is based in Abu Dhabi.",
             "G42, based in Abu Dhabi, ...") -> 1.0
    """

    name = "lexical"

    def support(self, question: str, claim: str, evidence: str) -> float:
        have = content_words(evidence)
        asked = content_words(question)
        said = content_words(claim) - asked
        q = len(asked & have) / len(asked) if asked else 1.0
        c = len(said & have) / len(said) if said else 1.0
        return min(q, c) ** 0.5 * max(q, c) ** 0.5


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _local(config: Config) -> SupportJudge:
    return ModelJudge(config)


def _lexical(config: Config) -> SupportJudge:
    return LexicalJudge()


JUDGES: dict[str, Callable[[Config], SupportJudge]] = {"local": _local, "lexical": _lexical}


def build_judge(config: Config, backend: str) -> SupportJudge:
    """The judge named by RAG_JUDGE; "auto" = the local model when `backend` runs one, else lexical."""
    name = config.judge
    if name == "auto":
        name = "local" if backend == "local" else "lexical"
    factory = JUDGES.get(name)
    if factory is None:
        raise ConfigError(f"Unknown judge {name!r}. Valid judges: auto, {', '.join(JUDGES)}.")
    return factory(config)
