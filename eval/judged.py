"""Citation quality in the ALCE sense, measured with an instrument the verifier does not use.

The verifier (rag/verifier.py) asks a few-shot "does this window state this answer to this question?"
of a one- or two-sentence window. This metric asks a different question of different evidence: does the
*whole* text of the cited passages (the retrieved chunks, not the quote) entail the sentence, read without
the question (zero-shot textual entailment, eval/prompts/entail*.md)? Per answer sentence:
- citation recall: 1 when the concatenation of its cited passages entails it;
- citation precision: a citation is irrelevant when it alone does not entail the sentence and the other
  citations of the sentence still do without it (Gao et al., 2023, "Enabling LLMs to generate text with
  citations"); precision = share of citations that are not irrelevant.
The entailment model is the local GGUF model (RAG_LLM_MODEL unless --judge-model is given); P(yes) >= 0.5.
Not covered: answer correctness (eval/metrics.py compares with reference answers).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from rag.claims import parse_claims

Entails = Callable[[str, str], float]  # (premise, hypothesis) -> P(entailed)


@cache
def _template(name: str) -> str:
    return resources.files("eval").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8").strip()


def model_entailment(config: Any, llm_model: str | None = None) -> Entails:
    """P(yes) from the local model for "does the premise entail the hypothesis?"."""
    from rag.generators.local import model_for
    from rag.judge import yes_probability

    model = model_for(config, llm_model)

    def entails(premise: str, hypothesis: str) -> float:
        user = Template(_template("entail")).substitute(premise=premise.strip(),
                                                        hypothesis=hypothesis.strip())
        body = {"messages": [{"role": "system", "content": _template("entail_system")},
                             {"role": "user", "content": user}],
                "max_tokens": 1, "temperature": 0.0, "logprobs": True, "top_logprobs": 10}
        return yes_probability(model.complete(body))

    return entails


def citation_scores(answer: Mapping[str, Any], entails: Entails, threshold: float = 0.5
                    ) -> tuple[float | None, float | None]:
    """(citation recall, citation precision) of one answer record; (None, None) when it was declined."""
    if answer.get("refused") or not answer.get("answer"):
        return None, None
    chunks = {h.get("chunk_id"): h.get("text", "") for h in answer.get("retrieved", [])}
    by_n = {int(c["n"]): chunks.get(c.get("chunk_id")) or c.get("quote", "")
            for c in answer.get("citations", [])}
    claims = [c for c in parse_claims(str(answer["answer"])) if re.search(r"\w", c.text)]
    if not claims:
        return None, None
    recall_hits, precision_hits, n_citations = 0, 0, 0
    for claim in claims:
        cited = [by_n[n] for n in claim.cited if n in by_n]
        if not cited:
            continue
        together = entails("\n\n".join(cited), claim.text) >= threshold
        recall_hits += together
        for i, passage in enumerate(cited):
            n_citations += 1
            alone = together if len(cited) == 1 else entails(passage, claim.text) >= threshold
            rest = [p for j, p in enumerate(cited) if j != i]
            irrelevant = not alone and bool(rest) and entails("\n\n".join(rest), claim.text) >= threshold
            precision_hits += together and not irrelevant or alone
    recall = recall_hits / len(claims)
    precision = precision_hits / n_citations if n_citations else 0.0
    return recall, precision


def add_judged_metrics(records: Sequence[dict[str, Any]], entails: Entails) -> dict[str, float | None]:
    """Write `judged_citation_recall` / `judged_citation_precision` into each record's metrics; averages."""
    recalls, precisions = [], []
    for record in records:
        if record.get("error"):
            continue
        recall, precision = citation_scores(record, entails)
        record["metrics"]["judged_citation_recall"] = recall
        record["metrics"]["judged_citation_precision"] = precision
        if recall is not None:
            recalls.append(recall)
        if precision is not None:
            precisions.append(precision)
    avg = lambda v: round(sum(v) / len(v), 4) if v else None  # noqa: E731
    return {"judged_citation_recall": avg(recalls), "judged_citation_precision": avg(precisions)}
