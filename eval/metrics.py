"""Evaluation metrics: retrieval, answer correctness, citations, faithfulness, refusal and latency.

Everything is computed locally from the `rag ask --json` shape, with no LLM judge. "Support" is lexical:
a passage supports a sentence when it contains every number of the sentence and at least half of its
content words (after `normalize_answer`, stop words removed). Per-question scores come from
`score_question`; `summarize` averages them into flat names such as `recall@5` and `mrr@5`.
Leaves out: semantic entailment (a paraphrase with new wording can be judged unsupported).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import mean
from typing import Any

from eval.dataset import Item
from eval.normalize import contains_phrase, is_number, normalize_answer

SUPPORT_THRESHOLD = 0.5

STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as into about over after before than then so "
    "is are was were be been being has have had do does did done will would can could should may might must "
    "it its this that these those there their they them he she his her we our you your i me my "
    "which who whom whose what when where why how not no also such per more most other some any all both "
    "each only very just up out according said says".split()
)

DEFINITIONS: dict[str, str] = {
    "hit@k": "Share of answerable questions for which at least one expected source is among the top-k "
             "retrieved passages.",
    "recall@k": "Share of a question's expected sources that appear among the top-k retrieved passages, "
                "averaged over answerable questions.",
    "mrr@k": "Mean of 1/rank of the first retrieved passage from an expected source (0 if none in the "
             "top k), over answerable questions.",
    "answer_accuracy": "Share of answerable questions answered (not declined) with text that contains a "
                       "reference answer after normalisation (case, punctuation, numbers, currency, dates).",
    "token_f1": "Best token-overlap F1 between the normalised answer and any reference answer, averaged "
                "over answerable questions (declined answers score 0).",
    "citation_precision": "Share of citations that point to an expected source and whose passage supports "
                          "the sentence citing it, over answered questions that have citations.",
    "cited_source_precision": "Share of an answer's citations that point to a document the gold set names "
                              "as a source, over answered answerable questions.",
    "judged_citation_recall": "ALCE citation recall: share of answer sentences entailed by the full text of "
                              "the passages they cite, judged by the local model as a zero-shot entailment "
                              "judge (eval/judged.py), an instrument the verifier does not use.",
    "judged_citation_precision": "ALCE citation precision: share of citations that are not irrelevant (a "
                                 "citation is irrelevant when it alone does not entail its sentence and the "
                                 "other citations do), same judge.",
    "citation_recall": "Share of a question's expected sources that the answer cites, averaged over "
                       "answerable questions (declined answers score 0).",
    "faithfulness": "Share of answer sentences supported by a passage they cite (all numbers and at least "
                    "half of the content words found in it), averaged over answered questions.",
    "true_refusal_rate": "Share of unanswerable questions that the system declined (higher is better).",
    "false_refusal_rate": "Share of answerable questions that the system declined (lower is better).",
    "overall_accuracy": "Share of all questions with the right outcome: answered correctly if answerable, "
                        "declined if not.",
    "error_rate": "Share of questions for which the pipeline raised an error instead of answering.",
    "latency_first_token_ms_p50": "Median time from sending the question to the first streamed token "
                                  "(or the final answer if nothing was streamed), in milliseconds.",
    "latency_first_token_ms_p90": "90th percentile of the time to the first token, in milliseconds.",
    "latency_total_ms_p50": "Median time from sending the question to the final verified answer, in ms.",
    "latency_total_ms_p90": "90th percentile of the time to the final verified answer, in milliseconds.",
}

_MARKER_RE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


# --- retrieval ---------------------------------------------------------------------------------


def retrieval_scores(
    retrieved: Sequence[str], expected: Collection[str], ks: Iterable[int]
) -> dict[str, float]:
    """hit@k and recall@k for each k, and mrr@max(k), from the ranked sources of the retrieved passages.

    Example: retrieval_scores(["b", "a", "a"], {"a"}, [1, 3]) -> {"hit@1": 0.0, "recall@1": 0.0,
    "hit@3": 1.0, "recall@3": 1.0, "mrr@3": 0.5}
    """
    ks = sorted(set(ks))
    expected = set(expected)
    out: dict[str, float] = {}
    for k in ks:
        found = expected & set(retrieved[:k])
        out[f"hit@{k}"] = 1.0 if found else 0.0
        out[f"recall@{k}"] = len(found) / len(expected) if expected else 0.0
    top = ks[-1]
    rank = next((i for i, s in enumerate(retrieved[:top], start=1) if s in expected), None)
    out[f"mrr@{top}"] = 1.0 / rank if rank else 0.0
    return out


# --- answers -----------------------------------------------------------------------------------


def answer_matches(answer: str, references: Iterable[str]) -> bool:
    """True if any reference occurs in the answer after normalisation.

    Example: answer_matches("It paid US$650M [1].", ["$650 million"]) -> True
    """
    return any(contains_phrase(answer, ref) for ref in references)


def token_f1(answer: str, references: Iterable[str]) -> float:
    """Best SQuAD-style token F1 against any reference. Example: token_f1("ten days", ["10 days"]) -> 1.0"""
    pred = normalize_answer(answer).split()
    best = 0.0
    for ref in references:
        gold = normalize_answer(ref).split()
        common = sum(min(pred.count(t), gold.count(t)) for t in set(gold))
        if common:
            p, r = common / len(pred), common / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


# --- claims and support ------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """One answer sentence (markers removed) and the citation numbers it points to."""

    text: str
    markers: tuple[int, ...]


def split_claims(answer: str) -> list[Claim]:
    """Split an answer into sentences with their [n] markers. A sentence without markers borrows those of
    the next marked sentence in the same paragraph ("A. B [1]." cites [1] for both); a stray marker after a
    full stop ("A. [1]") belongs to the sentence before it.

    Example: split_claims("Paid $1bn. In 2019 [2].") -> [Claim("Paid $1bn.", (2,)), Claim("In 2019.", (2,))]
    """
    claims: list[Claim] = []
    for paragraph in re.split(r"\n\s*\n|\n(?=\s*(?:[-*•]|\d+\.)\s)", answer):
        pieces = [p for p in _SENTENCE_END_RE.split(paragraph.strip()) if p.strip()]
        para: list[tuple[str, list[int]]] = []
        for piece in pieces:
            markers = [int(n) for group in _MARKER_RE.findall(piece) for n in re.split(r"[,;]", group)]
            text = re.sub(r"\s+([.,;:!?])", r"\1", _MARKER_RE.sub("", piece)).strip()
            if not content_words(text) and para:  # a marker-only piece: attach to the sentence before
                para[-1][1].extend(markers)
                continue
            para.append((text, markers))
        pending: list[str] = []
        for text, markers in para:
            pending.append(text)
            if markers:
                claims.extend(Claim(t, tuple(dict.fromkeys(markers))) for t in pending)
                pending = []
        claims.extend(Claim(t, ()) for t in pending)
    return [c for c in claims if content_words(c.text)]


def content_words(text: str) -> list[str]:
    """Normalised non-stop words. Example: content_words("The deal is $1bn") -> ["deal", "1000000000"]"""
    return [t for t in normalize_answer(text).split() if t not in STOPWORDS]


_SUFFIXES = ("ments", "ment", "ings", "ing", "edly", "ed", "ies", "es", "s", "ly")


def _stem(token: str) -> str:
    """Crude suffix stripping. Example: _stem("invested") -> "invest" == _stem("investments")."""
    for suffix in _SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 4 and not token.endswith("ss"):
            return token[: -len(suffix)]
    return token


def support_score(claim: str, passage: str) -> float:
    """Share of the claim's content words found in the passage; 0 if a number of the claim is missing.

    Example: support_score("Microsoft paid $650M", "Microsoft's $650 million stake") -> 0.667 (no "paid")
    """
    words = content_words(claim)
    if not words:
        return 1.0
    have = {_stem(t) for t in normalize_answer(passage).split()}
    if any(is_number(t) and t not in have for t in words):
        return 0.0
    return sum(_stem(t) in have for t in words) / len(words)


def supports(claim: str, passage: str, threshold: float = SUPPORT_THRESHOLD) -> bool:
    """Example: supports("It took ten days", "resolved within just 10 days") -> True (2 of 3 words)"""
    return support_score(claim, passage) >= threshold


# --- citations ---------------------------------------------------------------------------------


def citation_passages(answer: Mapping[str, Any]) -> dict[int, tuple[str, str]]:
    """Map citation number -> (source, passage text): the quote plus the retrieved chunk it came from."""
    chunks = {h.get("chunk_id"): h.get("text", "") for h in answer.get("retrieved", [])}
    out: dict[int, tuple[str, str]] = {}
    for c in answer.get("citations", []):
        text = " ".join(t for t in (c.get("quote", ""), chunks.get(c.get("chunk_id"), "")) if t)
        out[int(c["n"])] = (c.get("source", ""), text)
    return out


def citation_precision(claims: Sequence[Claim], passages: Mapping[int, tuple[str, str]],
                       expected: Collection[str], answer_text: str = "") -> float | None:
    """Share of citations from an expected source that support a sentence citing them (None if no citations).

    A citation that no sentence points to is checked against the whole answer.
    """
    if not passages:
        return None
    good = 0
    for n, (source, passage) in passages.items():
        cited_by = [c.text for c in claims if n in c.markers] or [answer_text]
        if source in expected and any(supports(t, passage) for t in cited_by):
            good += 1
    return good / len(passages)


def citation_recall(cited_sources: Iterable[str], expected: Collection[str]) -> float:
    """Example: citation_recall(["a.txt"], ["a.txt", "b.txt"]) -> 0.5"""
    expected = set(expected)
    return len(expected & set(cited_sources)) / len(expected) if expected else 0.0


def faithfulness(claims: Sequence[Claim], passages: Mapping[int, tuple[str, str]]) -> float | None:
    """Share of sentences supported by a passage they cite; uncited sentences count as unsupported."""
    if not claims:
        return None
    ok = sum(any(n in passages and supports(c.text, passages[n][1]) for n in c.markers) for c in claims)
    return ok / len(claims)


# --- per question and summary ------------------------------------------------------------------


def score_question(item: Item, answer: Mapping[str, Any] | None, ks: Iterable[int]) -> dict[str, Any]:
    """All per-question metrics; `answer` is the `rag ask --json` dict, or None if the pipeline raised.

    Metrics that do not apply to the question (e.g. recall for an unanswerable one) are None.
    """
    ks = sorted(set(ks))
    m: dict[str, Any] = {"answerable": item.answerable}
    if answer is None:
        m.update(refused=False, correct=False, outcome="error")
        if item.answerable:
            m.update({**retrieval_scores([], item.sources, ks), "token_f1": 0.0, "citation_recall": 0.0})
        return m
    refused = bool(answer.get("refused"))
    text = "" if refused else str(answer.get("answer", ""))
    claims = split_claims(text)
    passages = citation_passages(answer)
    m["refused"] = refused
    if item.answerable:
        m["correct"] = not refused and answer_matches(text, item.answers)
        m["token_f1"] = 0.0 if refused else token_f1(text, item.answers)
        if item.sources:
            retrieved = [h.get("source", "") for h in answer.get("retrieved", [])]
            m.update(retrieval_scores(retrieved, item.sources, ks))
            m["citation_recall"] = 0.0 if refused else citation_recall(
                (s for s, _ in passages.values()), item.sources)
            m["citation_precision"] = None if refused else citation_precision(
                claims, passages, item.sources, text)
            cited = [s for s, _ in passages.values()]
            m["cited_source_precision"] = (None if refused or not cited
                                           else sum(s in item.sources for s in cited) / len(cited))
    else:
        m["correct"] = refused
    m["faithfulness"] = None if refused else faithfulness(claims, passages)
    m["outcome"] = "pass" if m["correct"] else "fail"
    return m


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default). Example: percentile([1, 2, 3, 4], 90) -> 3.7"""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _avg(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return round(mean(vals), 4) if vals else None


def summarize(records: Sequence[Mapping[str, Any]], ks: Iterable[int]) -> dict[str, Any]:
    """Flat summary metrics from result records (each with "metrics" and "latency_ms").

    Example keys: "hit@5", "recall@5", "mrr@5", "answer_accuracy", "false_refusal_rate".
    """
    ks = sorted(set(ks))
    ms = [r["metrics"] for r in records]
    ans = [m for m in ms if m["answerable"]]
    unans = [m for m in ms if not m["answerable"]]
    with_sources = [m for m in ans if f"hit@{ks[-1]}" in m]
    out: dict[str, Any] = {"questions": len(ms), "answerable": len(ans), "unanswerable": len(unans),
                           "errors": sum(m["outcome"] == "error" for m in ms)}
    for k in ks:
        out[f"hit@{k}"] = _avg(m[f"hit@{k}"] for m in with_sources)
        out[f"recall@{k}"] = _avg(m[f"recall@{k}"] for m in with_sources)
    out[f"mrr@{ks[-1]}"] = _avg(m[f"mrr@{ks[-1]}"] for m in with_sources)
    out["answer_accuracy"] = _avg(m["correct"] for m in ans)
    out["token_f1"] = _avg(m["token_f1"] for m in ans)
    out["citation_precision"] = _avg(m.get("citation_precision") for m in ans)
    out["citation_recall"] = _avg(m.get("citation_recall") for m in with_sources)
    out["cited_source_precision"] = _avg(m.get("cited_source_precision") for m in ans)
    out["faithfulness"] = _avg(m.get("faithfulness") for m in ms)
    out["true_refusal_rate"] = _avg(m["refused"] for m in unans)
    out["false_refusal_rate"] = _avg(m["refused"] for m in ans)
    out["overall_accuracy"] = _avg(m["correct"] for m in ms)
    out["error_rate"] = _avg(m["outcome"] == "error" for m in ms)
    for name in ("first_token", "total"):
        vals = [r["latency_ms"][name] for r in records if r.get("latency_ms", {}).get(name) is not None]
        for q in (50, 90):
            p = percentile(vals, q)
            out[f"latency_{name}_ms_p{q}"] = None if p is None else round(p, 1)
    return out


def per_group_accuracy(records: Sequence[Mapping[str, Any]], key: str) -> dict[str, tuple[float, int]]:
    """Accuracy and count per expected source ("sources") or per tag ("tags"); unanswerable items go
    under "(unanswerable)" when grouping by source."""
    groups: dict[str, list[bool]] = {}
    for r in records:
        names = r.get(f"expected_{key}" if key == "sources" else key) or (
            ["(unanswerable)"] if key == "sources" else ["(untagged)"])
        for name in names:
            groups.setdefault(name, []).append(bool(r["metrics"]["correct"]))
    return {g: (round(sum(v) / len(v), 4), len(v)) for g, v in sorted(groups.items())}


def metric_definition(name: str) -> str:
    """The one-sentence definition of a flat metric name, with k filled in (`recall@5` -> "... top-5 ...")."""
    match = re.fullmatch(r"(.+)@(\d+)", name)
    if match:
        return DEFINITIONS.get(f"{match.group(1)}@k", "").replace("top-k", f"top-{match.group(2)}").replace(
            "top k", f"top {match.group(2)}")
    return DEFINITIONS.get(name, "")
