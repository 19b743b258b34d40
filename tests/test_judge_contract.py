"""The `SupportJudge` contract, run over every implementation: the lexical judge, the scripted fake used by
unit tests, and the real local model (slow). A judge returns a score in [0, 1], is deterministic, and scores
a passage that states the answer above one that is about something else."""

from __future__ import annotations

import pytest
from test_answer_fakes import ScriptedJudge

from rag.judge import JUDGES, LexicalJudge, ModelJudge, SupportJudge, build_judge, yes_probability

EVIDENCE = "The Lisbon office closes at 18:00 on weekdays. Visitors sign in at the front desk."
STATED = ("When does the Lisbon office close on weekdays?", "The Lisbon office closes at 18:00 on weekdays.")
UNRELATED = ("How many parking spaces does the Lisbon office have?", "Visitors sign in at the front desk.")


def _scripted() -> SupportJudge:
    return ScriptedJudge({"front desk": 0.1})


def _model() -> SupportJudge:
    from rag.config import Config

    return ModelJudge(Config.from_env({}))


IMPLEMENTATIONS = [
    pytest.param(LexicalJudge, id="lexical", marks=pytest.mark.unit),
    pytest.param(_scripted, id="scripted", marks=pytest.mark.unit),
    pytest.param(_model, id="local-model", marks=[pytest.mark.integration, pytest.mark.slow]),
]


@pytest.fixture(params=IMPLEMENTATIONS, scope="module")
def judge(request) -> SupportJudge:
    return request.param()


class TestSupportJudgeContract:
    def test_is_a_support_judge_with_a_name(self, judge):
        assert isinstance(judge, SupportJudge) and judge.name

    def test_scores_are_probabilities(self, judge):
        for question, claim in (STATED, UNRELATED):
            assert 0.0 <= judge.support(question, claim, EVIDENCE) <= 1.0

    def test_stated_answer_scores_above_an_unrelated_one(self, judge):
        assert judge.support(*STATED, EVIDENCE) > judge.support(*UNRELATED, EVIDENCE)

    def test_repeatable(self, judge):
        # llama.cpp's prompt-cache reuse changes the arithmetic slightly between calls (seen: 0.725 vs 0.751),
        # so the model judge is repeatable within a few hundredths, not bit for bit.
        assert judge.support(*STATED, EVIDENCE) == pytest.approx(judge.support(*STATED, EVIDENCE), abs=0.06)


@pytest.mark.unit
def test_yes_probability_reads_top_logprobs_and_falls_back_to_the_word():
    import math

    response = {"choices": [{"message": {"content": "yes"}, "logprobs": {"content": [{"top_logprobs": [
        {"token": "yes", "logprob": math.log(0.6)}, {"token": " No", "logprob": math.log(0.2)},
        {"token": "Yes", "logprob": math.log(0.1)}]}]}}]}
    assert yes_probability(response) == pytest.approx(0.7 / 0.9)
    assert yes_probability({"choices": [{"message": {"content": "No."}}]}) == 0.0


@pytest.mark.unit
def test_build_judge_follows_the_backend_and_names_valid_judges():
    from rag.config import Config
    from rag.errors import ConfigError

    assert build_judge(Config.from_env({}), "extractive").name == "lexical"
    assert build_judge(Config.from_env({}), "local").name == "local"
    assert build_judge(Config.from_env({}, judge="lexical"), "local").name == "lexical"
    with pytest.raises(ConfigError, match="auto, local, lexical"):
        build_judge(Config.from_env({}, judge="nli"), "local")
    assert set(JUDGES) == {"local", "lexical"}
