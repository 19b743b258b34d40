"""The verifier's decisions and their typed reasons, with a scripted judge (no model).

The passages are tests/test_answer_fakes.DOCS; none of these cases comes from an evaluation set.
"""

from __future__ import annotations

import pytest
from test_answer_fakes import DOCS, ScriptedJudge, make_hit

from index.records import Chunk, Hit, content_hash
from rag.records import Question, Reason
from rag.verifier import REFUSAL_TEXT, Verifier, is_decline

pytestmark = pytest.mark.unit


def hit(source: str, text: str, dense: float = 0.5) -> Hit:
    chunk = Chunk(id=content_hash(source, text), doc_id=content_hash(text), source=source,
                  title=source.split(".")[0].title(), text=text, start=0, end=len(text))
    return Hit(chunk=chunk, score=1.0, rank=1, scores={"dense": dense, "bm25": 1.0})


@pytest.fixture
def hits():
    return [make_hit("people.txt", 1), make_hit("invest.txt", 2)]


def verifier(judge=None, **kw):
    return Verifier(judge or ScriptedJudge(), min_support=0.5, **kw)


def q(text: str, context: str = "") -> Question:
    return Question(text, context)


def test_supported_sentence_is_kept_with_its_quote_and_offsets(hits):
    draft = "Microsoft invested $650 million in Inflection [2]."
    d = verifier().decide(draft, q("How much in Inflection?"), hits)
    assert d.answered and d.text == "Microsoft invested $650 million in Inflection [1]."
    (c,) = d.citations
    assert c.source == "invest.txt" and DOCS["invest.txt"][c.start : c.end] == c.quote
    assert "$650 million" in c.quote and d.reasons == () and d.support == (0.9,)


def test_wrong_citation_is_repaired_to_the_passage_holding_the_figure(hits):
    d = verifier().decide("Microsoft invested $1.5 billion in G42 [1].", q("How much in G42?"), hits)
    assert d.answered and d.citations[0].source == "invest.txt"
    assert Reason.CITATION_REPAIRED in d.reasons


def test_uncited_sentence_gets_a_citation(hits):
    d = verifier().decide("Mustafa Suleyman is the CEO of Microsoft AI.", q("Who leads Microsoft AI?"), hits)
    assert d.answered and d.text.endswith("[1].") and Reason.CITATION_ADDED in d.reasons


@pytest.mark.parametrize("draft, reason", [
    ("Microsoft invested $700 million in Inflection [2].", Reason.FIGURE_NOT_IN_SOURCE),
    ("Microsoft invested in Mistral [2].", Reason.NAME_NOT_IN_SOURCE),
])
def test_figures_and_names_found_in_no_passage_decline(hits, draft, reason):
    judge = ScriptedJudge()
    d = verifier(judge).decide(draft, q("How much did Microsoft invest?"), hits)
    assert not d.answered and d.text == REFUSAL_TEXT
    assert d.reasons[0] == Reason.UNSUPPORTED and reason in d.reasons
    assert judge.calls == []  # the lexical check decides before the judge is paid for


def test_a_figure_next_to_the_wrong_name_is_left_to_the_judge(hits):
    # "$650 million" and "G42" sit in adjacent sentences of invest.txt, so a two-sentence window holds both
    # and the lexical check passes: only the judge can tell the figure belongs to Inflection.
    judge = ScriptedJudge({"G42": 0.1})
    d = verifier(judge).decide("Microsoft invested $650 million in G42 [2].", q("How much in G42?"), hits)
    assert not d.answered and Reason.NOT_STATED in d.reasons and judge.calls


def test_names_taken_from_the_question_need_not_be_in_the_passage():
    text = "Staff receive 25 days of paid time off per calendar year."
    judge = ScriptedJudge()
    d = verifier(judge).decide("You get 25 PTO days a year [1].", q("How many PTO days do I get?"),
                               [hit("leave.md", text)])
    assert d.answered and judge.calls


def test_judge_below_threshold_drops_the_sentence_and_declines(hits):
    judge = ScriptedJudge({"Altman": 0.2})
    d = verifier(judge).decide("Satya Nadella backed Altman [1].", q("Who backed Altman?"), hits)
    assert not d.answered and d.reasons[:1] == (Reason.UNSUPPORTED,) and Reason.NOT_STATED in d.reasons
    assert d.support == (0.2,)


def test_one_unsupported_sentence_of_two_is_dropped(hits):
    judge = ScriptedJudge({"DeepMind": 0.1})
    draft = "Mustafa Suleyman is CEO of Microsoft AI [1]. He led research at DeepMind [1]."
    d = verifier(judge).decide(draft, q("Who is Mustafa Suleyman?"), hits)
    assert d.answered and "DeepMind" not in d.text and Reason.SENTENCE_DROPPED in d.reasons


def test_the_judge_sees_question_claim_and_the_window_with_its_previous_sentence(hits):
    judge = ScriptedJudge()
    verifier(judge).decide("It is based in Abu Dhabi [2].", q("In which city is G42 based?"), hits)
    question, claim, evidence = judge.calls[0]
    assert question == "In which city is G42 based?" and claim == "It is based in Abu Dhabi."
    assert "Abu Dhabi" in evidence and "Inflection" in evidence  # the sentence before is context


@pytest.mark.parametrize("draft", ["UNANSWERABLE", "Unanswerable.", "  unanswerable - sources are silent"])
def test_the_decline_marker_is_a_structured_decline(hits, draft):
    judge = ScriptedJudge()
    d = verifier(judge).decide(draft, q("What is the stock price?"), hits)
    assert is_decline(draft) and not d.answered and d.reasons == (Reason.MODEL_DECLINED,)
    assert judge.calls == []


@pytest.mark.parametrize("draft", [
    "No, VACUUM cannot be run inside a transaction block [1].",
    "This benefit is not available to contractors [1].",
    "The documents do not cover contractors; the benefit is not available to them [1].",
    "No answer is needed: contractors are not eligible [1].",
])
def test_negative_facts_are_answers_not_declines(draft):
    text = ("VACUUM cannot be run inside a transaction block. This benefit is not available to contractors. "
            "The documents do not cover contractors.")
    d = verifier().decide(draft, q("Is it available?"), [hit("facts.md", text)])
    assert not is_decline(draft) and d.answered


def test_empty_or_claimless_drafts_decline(hits):
    assert verifier().decide("", q("Who?"), hits).reasons == (Reason.EMPTY_DRAFT,)
    assert verifier().decide("[1] [2]", q("Who?"), hits).reasons == (Reason.EMPTY_DRAFT,)
    assert verifier().decide("Yes.", q("Who?"), hits).reasons == (Reason.EMPTY_DRAFT,)


def test_screen_declines_off_topic_and_empty_retrieval():
    v = verifier(min_relevance=0.2)
    assert v.screen([]).reasons == (Reason.NO_PASSAGES,)
    assert v.screen([hit("a.txt", "Soup on Tuesdays.", dense=0.05)]).reasons == (Reason.OFF_TOPIC,)
    assert v.screen([hit("a.txt", "Soup on Tuesdays.", dense=0.25)]) is None


def test_judge_calls_are_bounded_per_answer(hits):
    judge = ScriptedJudge(default=0.0)
    draft = " ".join(f"Microsoft is big number {i} [1]." for i in range(1, 3)) + " Satya Nadella is CEO [1]."
    verifier(judge).decide(draft, q("Who?"), hits + hits)
    assert len(judge.calls) <= 3


def test_a_second_window_is_tried_when_the_first_is_not_enough():
    first = hit("a.md", "The limit is 500 EUR for hotels in Utrecht.")
    second = hit("b.md", "Meals are capped at 500 EUR per trip.")
    judge = ScriptedJudge()
    judge.support = lambda question, claim, evidence: 0.9 if "Meals" in evidence else 0.1  # type: ignore
    d = verifier(judge).decide("Meal spending is capped at 500 EUR [1].", q("What is the meal cap?"),
                               [first, second])
    assert d.answered and d.citations[0].source == "b.md" and Reason.CITATION_REPAIRED in d.reasons


def test_a_table_row_reaches_the_judge_with_its_header():
    from rag.verifier import _with_table_header

    text = ("Allowance per office:\n| Office | One-off allowance |\n|---|---|\n| Utrecht | 400 EUR |\n"
            "| Leeds | 350 GBP |\nDone.")
    row = text.index("| Leeds")
    assert _with_table_header(text, row, row + len("| Leeds | 350 GBP |")) == (
        "| Office | One-off allowance |\n| Leeds | 350 GBP |")
    prose = text.index("Done.")
    assert _with_table_header(text, prose, prose + 5) == "Done."


@pytest.mark.parametrize("draft, question", [
    ("Yes, interns can join the pension plan [1].", "Can interns join the pension plan?"),
    ("No, the pension plan does not accept interns [1].", "does the pension plan accept interns?"),
    ("Because the pension plan accepts interns [1].", "Why does the pension plan accept interns?"),
    # a contracted negation is the echo's "no", not a word from a source
    ("No, interns don't join the pension plan themselves [1].", "Do interns join the pension plan?"),
    ("No, interns can't join the pension plan [1].", "Can interns join the pension plan?"),
])
def test_a_sentence_that_only_echoes_the_question_is_dropped_before_the_judge(draft, question):
    judge = ScriptedJudge()
    text = "Interns are not eligible for the pension plan. Staff join after three months."
    d = verifier(judge).decide(draft, q(question), [hit("pension.md", text)])
    assert not d.answered and Reason.ECHOES_QUESTION in d.reasons
    assert judge.calls == []


def test_an_answer_in_the_sources_words_is_not_an_echo():
    judge = ScriptedJudge()
    text = "Interns are not eligible for the pension plan. Staff join after three months."
    d = verifier(judge).decide("No, interns are not eligible for the pension plan [1].",
                               q("Can interns join the pension plan?"), [hit("pension.md", text)])
    assert d.answered and Reason.ECHOES_QUESTION not in d.reasons and judge.calls


def test_a_choice_question_may_be_answered_in_its_own_words():
    judge = ScriptedJudge()
    text = "The upload limit applies per file, not per upload."
    d = verifier(judge).decide("The limit applies per file [1].", q("Is the limit per file or per upload?"),
                               [hit("limits.md", text)])
    assert d.answered and Reason.ECHOES_QUESTION not in d.reasons
