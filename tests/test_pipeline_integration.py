"""End to end over seeds/ with the real index: extractive backend (fast), the real local model (slow)."""

from __future__ import annotations

import pytest

from rag.pipeline import build_pipeline
from rag.records import Final, Sources, Turn

pytestmark = pytest.mark.integration

ANSWERABLE = [
    ("How much did Microsoft put into Inflection?", "650", "000_"),
    ("How much did Microsoft put into G42?", "1.5 billion", "000_"),
    ("When did Microsoft first invest in OpenAI?", "2019", "003_"),
    ("Who is the CEO of Microsoft AI?", "Suleyman", "004_"),
]
OFF_TOPIC = ["Who won the 2022 FIFA World Cup?"]
# In-domain but not in the articles: only the model's judge can tell (the extractive backend's lexical one
# cannot), so it is asked of the local model.
OUT_OF_SCOPE = [*OFF_TOPIC, "What is the monthly price of a Microsoft 365 Copilot subscription?"]


@pytest.fixture(scope="module")
def pipeline(real_config):
    return build_pipeline(real_config)


@pytest.mark.parametrize(("question", "figure", "source"), ANSWERABLE)
def test_extractive_answers_with_the_right_article(pipeline, question, figure, source):
    answer = pipeline.ask(question, backend="extractive")
    assert not answer.refused, answer.reasons
    assert figure in answer.text
    assert answer.citations and answer.citations[0].source.startswith(source)
    doc = pipeline.document(answer.citations[0].source)
    assert doc.text[answer.citations[0].start : answer.citations[0].end] == answer.citations[0].quote


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_extractive_declines_off_topic(pipeline, question):
    answer = pipeline.ask(question, backend="extractive")
    assert answer.refused and answer.citations == () and answer.retrieved


def test_sources_arrive_within_100_ms(pipeline):
    pipeline.search("warm up the embedder")
    events = pipeline.stream("How much did Microsoft put into G42?", backend="extractive")
    first = next(events)
    assert isinstance(first, Sources) and first.hits
    final = [e for e in events if isinstance(e, Final)][0]
    assert final.answer.timings_ms["retrieve"] < 100


def test_follow_up_over_seeds(pipeline):
    history = [Turn("user", "How much did Microsoft put into Inflection?"), Turn("assistant", "$650m [1].")]
    answer = pipeline.ask("And how much in G42?", history, backend="extractive")
    assert "1.5 billion" in answer.text
    assert answer.standalone_question == "How much did Microsoft put into G42?"


@pytest.mark.slow
@pytest.mark.parametrize(("question", "figure", "source"), ANSWERABLE[:3])
def test_local_model_answers_with_verified_citations(pipeline, question, figure, source):
    answer = pipeline.ask(question, backend="local")
    assert not answer.refused, answer.reasons
    assert figure in answer.text
    assert answer.citations[0].source.startswith(source)


@pytest.mark.slow
@pytest.mark.parametrize("question", OUT_OF_SCOPE)
def test_local_model_declines_out_of_scope(pipeline, question):
    answer = pipeline.ask(question, backend="local")
    assert answer.refused, answer.text
