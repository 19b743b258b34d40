"""The model's own confidence, read from the tokens a backend logs (rag/confidence.py), and its use by the
verifier. Token values are made up; none comes from an evaluation set."""

from __future__ import annotations

import math

import pytest
from test_answer_fakes import ScriptedJudge, make_hit

from rag.confidence import Confidence, TokenChoice, TokenLog, alternative_prefix, confidence
from rag.records import Question, Reason
from rag.verifier import Verifier

pytestmark = pytest.mark.unit
MARKER = "UNANSWERABLE"


def tok(token: str, lp: float, **alternatives: float) -> TokenChoice:
    return TokenChoice(token, lp, {token: lp, **alternatives})


def test_decline_probability_is_the_mass_on_the_markers_first_token():
    log = [TokenChoice("The", math.log(0.5), {"The": math.log(0.5), "UN": math.log(0.3), " UN": math.log(0.1),
                                             "U": math.log(0.05)}),
           tok(" fee", -0.1), tok(" is", -0.2), tok(" 5", -1.5), tok(" [", -0.01), tok("1", -0.01)]
    c = confidence(log, MARKER)
    assert c is not None
    assert c.decline == pytest.approx(0.4)  # "U" alone is too short to count as the marker
    assert c.tokens == 4  # the answer's own words end at the first citation
    assert c.answer_logprob == pytest.approx((math.log(0.5) - 0.1 - 0.2 - 1.5) / 4)
    assert c.answer_min_logprob == pytest.approx(-1.5)


def test_no_logged_tokens_means_no_confidence():
    assert confidence([], MARKER) is None
    assert confidence([TokenChoice("", 0.0, {})], MARKER) is None


def test_a_draft_that_is_only_a_citation_has_no_answer_tokens():
    c = confidence([tok("[", -0.1), tok("2", -0.1), tok("]", -0.1)], MARKER)
    assert c is not None and c.tokens == 0 and c.decline == 0.0


def test_token_log_reads_openai_shaped_logprobs():
    log = TokenLog()
    top = [{"token": "Yes", "logprob": -0.2}, {"token": "No", "logprob": -1.7}]
    log.add_openai({"content": [{"token": "Yes", "logprob": -0.2, "top_logprobs": top}]})
    log.add_openai(None)
    assert log.tokens == (TokenChoice("Yes", -0.2, {"Yes": -0.2, "No": -1.7}),)


def test_confidence_round_trips_through_json():
    c = Confidence(0.1234, -0.5, -2.25, 7)
    assert Confidence.from_json(c.to_json()) == c


def test_a_doubtful_first_token_declines_before_the_judge_is_paid():
    judge = ScriptedJudge()
    hits = [make_hit("invest.txt", 2)]
    draft = "Microsoft invested $650 million in Inflection [1]."
    unsure = Confidence(decline=0.4, answer_logprob=-0.1, answer_min_logprob=-0.5, tokens=8)
    d = Verifier(judge, min_support=0.5, max_decline=0.3).decide(draft, Question("How much?"), hits, unsure)
    assert not d.answered and d.reasons == (Reason.MODEL_UNSURE,) and judge.calls == []
    sure = Confidence(decline=0.2, answer_logprob=-0.1, answer_min_logprob=-0.5, tokens=8)
    assert Verifier(ScriptedJudge(), min_support=0.5, max_decline=0.3).decide(
        draft, Question("How much?"), hits, sure).answered
    # without a confidence (a backend that reports none) the rule does not apply
    assert Verifier(ScriptedJudge(), min_support=0.5, max_decline=0.3).decide(
        draft, Question("How much?"), hits).answered


def test_the_alternative_is_the_runner_up_where_the_model_hesitated_most():
    log = [tok("The", -0.01), tok(" CEO", -0.05), tok(" is", -0.01),
           TokenChoice(" Sat", math.log(0.55), {" Sat": math.log(0.55), " Must": math.log(0.35),
                                                 "  Sat": math.log(0.05)}),
           tok("ya", -0.01), tok(" [", -0.01), tok("1", -0.01),
           TokenChoice("]", math.log(0.5), {"]": math.log(0.5), "],": math.log(0.45)})]  # after the citation
    assert alternative_prefix(log, MARKER) == "The CEO is Must"


def test_no_alternative_when_the_model_never_doubted_or_only_doubted_spacing_or_declining():
    assert alternative_prefix([tok("Yes", -0.001), tok(".", -0.001)], MARKER) is None
    spacing = TokenChoice(" 5", math.log(0.6), {" 5": math.log(0.6), "5": math.log(0.4)})
    assert alternative_prefix([tok("It", -0.01), spacing], MARKER) is None
    declining = TokenChoice("The", math.log(0.6), {"The": math.log(0.6), "UN": math.log(0.4)})
    punctuation = TokenChoice(",", math.log(0.6), {",": math.log(0.6), ".": math.log(0.4)})
    assert alternative_prefix([declining, tok(" x", -0.01), punctuation], MARKER) is None
    assert alternative_prefix([], MARKER) is None
