"""Each metric on hand-made cases whose right value is known."""

from __future__ import annotations

import pytest

from eval.dataset import Item
from eval.metrics import (
    DEFINITIONS,
    Claim,
    answer_matches,
    citation_passages,
    citation_precision,
    citation_recall,
    faithfulness,
    metric_definition,
    per_group_accuracy,
    percentile,
    retrieval_scores,
    score_question,
    split_claims,
    summarize,
    support_score,
    supports,
    token_f1,
)

pytestmark = pytest.mark.unit

INFLECTION = "Microsoft's $650 million investment in Inflection indicates the latter's significant AI work."
G42 = "Microsoft's $1.5 billion investment in G42, based in Abu Dhabi, underscores the importance of G42."
WEATHER = "The weather in Paris was mild in spring."


# --- retrieval ---------------------------------------------------------------------------------


def test_retrieval_scores_by_hand():
    ranked = ["x.txt", "a.txt", "x.txt", "b.txt", "a.txt"]
    s = retrieval_scores(ranked, {"a.txt", "b.txt"}, [1, 3, 5])
    assert s == {"hit@1": 0.0, "recall@1": 0.0, "hit@3": 1.0, "recall@3": 0.5,
                 "hit@5": 1.0, "recall@5": 1.0, "mrr@5": 0.5}
    assert retrieval_scores(["a.txt"], {"a.txt"}, [1])["mrr@1"] == 1.0
    assert retrieval_scores(["x", "y", "a"], {"a"}, [3])["mrr@3"] == pytest.approx(1 / 3)
    assert retrieval_scores([], {"a"}, [5]) == {"hit@5": 0.0, "recall@5": 0.0, "mrr@5": 0.0}


# --- answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "refs", "expected"),
    [
        ("Microsoft invested US$650M in Inflection [1].", ["$650 million"], True),
        ("It was 650 million dollars.", ["$650 million"], True),
        ("About $1.5bn went to G42.", ["$1.5 billion"], True),
        ("The crisis was resolved in 10 days.", ["ten days"], True),
        ("Azure is exclusive until at least 2032.", ["2030", "2032"], True),
        ("It invested $65 million.", ["$650 million"], False),
        ("I don't know.", ["Satya Nadella", "Nadella"], False),
    ],
)
def test_answer_matches(answer, refs, expected):
    assert answer_matches(answer, refs) is expected


def test_token_f1_by_hand():
    assert token_f1("ten days", ["10 days"]) == 1.0
    # pred "satya nadella ceo" vs gold "satya nadella": p = 2/3, r = 1 -> f1 = 0.8
    assert token_f1("Satya Nadella, CEO", ["Satya Nadella"]) == pytest.approx(0.8)
    assert token_f1("nothing", ["Nadella"]) == 0.0
    assert token_f1("Nadella", ["someone else", "Nadella"]) == 1.0


# --- claims and support ------------------------------------------------------------------------


def test_split_claims_assigns_markers():
    text = ("Microsoft invested $650 million in Inflection [1]. It also put $1.5 billion into G42. [2]\n\n"
            "Both are big. Both are recent [1, 3].\nThis is all.")
    assert split_claims(text) == [
        Claim("Microsoft invested $650 million in Inflection.", (1,)),
        Claim("It also put $1.5 billion into G42.", (2,)),
        Claim("Both are big.", (1, 3)),
        Claim("Both are recent.", (1, 3)),
    ]  # "This is all." has no content word left and is not a claim
    assert split_claims("No markers here at all.") == [Claim("No markers here at all.", ())]
    assert split_claims("") == []


def test_support_score_by_hand():
    # content words: microsoft, invested, 650000000, inflection -> all four in the passage
    assert support_score("Microsoft invested $650M in Inflection.", INFLECTION) == 1.0
    # a number missing from the passage makes the claim unsupported, whatever the word overlap
    assert support_score("Microsoft invested $700 million in Inflection.", INFLECTION) == 0.0
    # microsoft, paid, 650000000: two of three found
    assert support_score("Microsoft paid $650M", INFLECTION) == pytest.approx(2 / 3)
    assert not supports("Microsoft invested heavily in Inflection.", WEATHER)
    assert supports("the", WEATHER)  # nothing to support


# --- citations and faithfulness ----------------------------------------------------------------


def _answer(text, citations, refused=False):
    return {
        "answer": text, "refused": refused,
        "citations": [{"n": n, "source": s, "chunk_id": f"c{n}", "quote": q} for n, s, q in citations],
        "retrieved": [{"source": s, "chunk_id": f"c{n}", "text": q} for n, s, q in citations],
    }


def test_citation_precision_and_recall_by_hand():
    text = ("Microsoft invested $650 million in Inflection [1]. It put $1.5 billion into G42 [2]. "
            "Paris is mild [3].")
    ans = _answer(text, [(1, "a.txt", INFLECTION), (2, "b.txt", G42), (3, "a.txt", WEATHER)])
    claims = split_claims(text)
    passages = citation_passages(ans)
    # [1] expected source and supports; [2] supports but from an unexpected source; [3] expected source and
    # "Paris is mild" is in WEATHER -> 2 of 3 good
    assert citation_precision(claims, passages, {"a.txt"}) == pytest.approx(2 / 3)
    assert citation_precision(claims, passages, {"a.txt", "b.txt"}) == 1.0
    assert citation_precision(claims, {}, {"a.txt"}) is None
    assert citation_recall(["a.txt"], ["a.txt", "b.txt"]) == 0.5
    assert citation_recall(["a.txt", "b.txt", "c.txt"], ["a.txt", "b.txt"]) == 1.0
    assert citation_recall([], ["a.txt"]) == 0.0


def test_citation_precision_checks_support_of_the_citing_sentence():
    text = "Microsoft invested $650 million in Inflection [1]. G42 got $1.5 billion [2]."
    ans = _answer(text, [(1, "a.txt", INFLECTION), (2, "a.txt", INFLECTION)])
    # [2] points to the right source but its passage does not hold "$1.5 billion": 1 of 2
    assert citation_precision(split_claims(text), citation_passages(ans), {"a.txt"}) == 0.5


def test_faithfulness_by_hand():
    passages = {1: ("a.txt", INFLECTION), 2: ("b.txt", G42)}
    claims = [
        Claim("Microsoft invested $650 million in Inflection.", (1,)),  # supported
        Claim("G42 is based in Abu Dhabi.", (1, 2)),  # supported by [2]
        Claim("Inflection received $2 billion.", (1,)),  # wrong number
        Claim("Microsoft is big.", ()),  # uncited
    ]
    assert faithfulness(claims, passages) == 0.5
    assert faithfulness([], passages) is None
    assert faithfulness([Claim("G42 is in Abu Dhabi.", (9,))], passages) == 0.0  # cites a missing number


# --- per question and summary ------------------------------------------------------------------

ANSWERABLE = Item("q1", "How much went to Inflection?", ("$650 million",), ("a.txt",))
TWO_SOURCES = Item("q2", "Inflection and G42?", ("$1.5 billion",), ("a.txt", "b.txt"))
UNANSWERABLE = Item("q3", "Copilot price?", (), ())


def test_score_question_answerable_correct():
    ans = _answer("Microsoft invested $650M in Inflection [1].", [(1, "a.txt", INFLECTION)])
    m = score_question(ANSWERABLE, ans, [1, 5])
    assert m["correct"] and m["outcome"] == "pass" and not m["refused"]
    assert (m["hit@1"], m["recall@5"], m["mrr@5"]) == (1.0, 1.0, 1.0)
    assert (m["citation_precision"], m["citation_recall"], m["faithfulness"]) == (1.0, 1.0, 1.0)


def test_score_question_refusals_and_errors():
    refused = _answer("The documents do not say.", [], refused=True)
    m = score_question(ANSWERABLE, refused, [5])
    assert (m["correct"], m["refused"]) == (False, True)
    assert (m["citation_recall"], m["citation_precision"]) == (0.0, None)
    m = score_question(UNANSWERABLE, refused, [5])
    assert m["correct"] and m["outcome"] == "pass" and "hit@5" not in m and m["faithfulness"] is None
    answered = _answer("It costs $30 per user [1].", [(1, "a.txt", WEATHER)])
    m = score_question(UNANSWERABLE, answered, [5])
    assert not m["correct"] and m["faithfulness"] == 0.0
    m = score_question(TWO_SOURCES, None, [5])
    assert m["outcome"] == "error" and m["hit@5"] == 0.0 and not m["correct"]


def _record(item, answer, total, first, sources):
    return {"id": item.id, "expected_sources": list(item.sources), "tags": [], "metrics":
            score_question(item, answer, [1, 5]), "latency_ms": {"first_token": first, "total": total},
            "_": sources}


def test_summarize_by_hand():
    right = _answer("Microsoft invested $650M in Inflection [1].", [(1, "a.txt", INFLECTION)])
    half = _answer("G42 got $1.5 billion [1].", [(1, "b.txt", G42)])
    refused = _answer("I cannot answer.", [], refused=True)
    records = [
        _record(ANSWERABLE, right, 100.0, 10.0, None),  # correct, retrieval perfect
        _record(TWO_SOURCES, half, 200.0, 20.0, None),  # correct, recall@5 = 0.5 (only b.txt retrieved)
        _record(ANSWERABLE, refused, 300.0, 30.0, None),  # false refusal
        _record(UNANSWERABLE, refused, 400.0, 40.0, None),  # true refusal
    ]
    s = summarize(records, [1, 5])
    assert (s["questions"], s["answerable"], s["unanswerable"], s["errors"]) == (4, 3, 1, 0)
    assert s["answer_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["false_refusal_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["true_refusal_rate"] == 1.0
    assert s["overall_accuracy"] == 0.75
    # hit@1: q1 a.txt first (1), q2 b.txt first (1), refused with nothing retrieved (0)
    assert s["hit@1"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["recall@5"] == pytest.approx((1 + 0.5 + 0) / 3, abs=1e-4)
    assert s["mrr@5"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["citation_recall"] == pytest.approx((1 + 0.5 + 0) / 3, abs=1e-4)
    assert s["citation_precision"] == 1.0  # only the two answered questions with citations count
    assert s["faithfulness"] == 1.0
    assert s["latency_total_ms_p50"] == 250.0 and s["latency_total_ms_p90"] == 370.0
    assert s["latency_first_token_ms_p50"] == 25.0


def test_per_group_accuracy():
    right = _answer("Microsoft invested $650M in Inflection [1].", [(1, "a.txt", INFLECTION)])
    refused = _answer("No.", [], refused=True)
    records = [_record(ANSWERABLE, right, 1, 1, None), _record(TWO_SOURCES, refused, 1, 1, None),
               _record(UNANSWERABLE, refused, 1, 1, None)]
    assert per_group_accuracy(records, "sources") == {
        "(unanswerable)": (1.0, 1), "a.txt": (0.5, 2), "b.txt": (0.0, 1)}


def test_percentile_matches_numpy_linear():
    assert percentile([1, 2, 3, 4], 90) == pytest.approx(3.7)
    assert percentile([5], 50) == 5 and percentile([], 50) is None


def test_every_summary_metric_has_a_one_sentence_definition():
    s = summarize([_record(ANSWERABLE, None, 1, 1, None)], [1, 5])
    counts = {"questions", "answerable", "unanswerable", "errors"}
    for name in set(s) - counts:
        d = metric_definition(name)
        assert d and d.endswith(".") and d.count(". ") == 0, name
    assert set(DEFINITIONS) >= {"hit@k", "recall@k", "mrr@k"}
    assert "top-3 retrieved" in metric_definition("hit@3") and "in the top 5" in metric_definition("mrr@5")
