# ruff: noqa: E501  (a table of cases reads better one per line)
"""Wrong-but-plausible drafts against the real verifier (real local model as judge): none may be shown.

Each case is a draft a small model could write for a question over a short passage: the wrong person, the
wrong figure, the right figure for the wrong thing, a flipped negation, an answer to a question the passage
does not cover, or the question's own words echoed back. The goal is that the verifier declines or drops
every one. Echoes (no word or figure beyond the question's) are dropped before the judge. Measured with the 1.5B judge: the wrong drafts score 0.03-0.58 and the right ones 0.42-0.85, so
no threshold separates them all; at RAG_MIN_SUPPORT 0.35 22 of 32 were rejected and every right draft kept;
at the threshold calibrated on 2026-11-23 (0.45) 27 of 32 are rejected and one right draft of 4 is dropped
("The line manager approves PTO requests", 0.42); at 0.6 all 32 and one right draft. The test is therefore a
regression gate on both shares at the shipped threshold; the cases on the wrong side are printed. The passages and questions are written for this test (four domains: business news,
a software manual, an HR policy, civil engineering) and appear in no evaluation set. Slow: about one judge
call per case on 2 cores.
"""

from __future__ import annotations

import pytest

from index.records import Chunk, Hit, content_hash
from rag.claims import strip_citations
from rag.config import Config
from rag.judge import ModelJudge
from rag.records import Question
from rag.verifier import Verifier

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NEWS = ("Northwind Capital invested $300 million in Helio Robotics in March 2024. Its chief executive, "
        "Maria Okonkwo, said the deal would close by June. Separately, Northwind sold its 12% stake in Vexa "
        "Labs for $45 million.")
MANUAL = ("The cache_size setting defaults to 64 MB. It can be changed at runtime with the SET command. The "
          "log_rotation setting defaults to 7 days and requires a restart. Backups cannot be run while a "
          "migration is in progress.")
POLICY = ("Employees receive 25 days of paid time off (PTO) per year. Up to 5 unused days can be carried over "
          "to the next year. Contractors are not eligible for PTO. Requests must be approved by the line "
          "manager at least two weeks in advance.")
BRIDGE = ("The bridge was designed by Elena Varga and opened in 1998. It replaced a ferry service that had run "
          "since 1921. Its main span is 420 metres long.")

CASES = [
    # (passage, question, wrong draft, what is wrong)
    (NEWS, "How much did Northwind invest in Helio Robotics?", "Northwind invested $45 million in Helio Robotics [1].", "figure of another deal"),
    (NEWS, "When will the Helio deal close?", "The deal will close in March 2024 [1].", "date of another event"),
    (NEWS, "What stake did Northwind sell in Vexa Labs?", "Northwind sold a 30% stake in Vexa Labs [1].", "invented figure"),
    (NEWS, "Who leads Helio Robotics?", "Maria Okonkwo leads Helio Robotics [1].", "person of another company"),
    (NEWS, "What is Northwind's share price?", "Northwind's share price is $300 million [1].", "unanswerable, figure reused"),
    (NEWS, "How much did Northwind invest in Helio Robotics?", "Northwind invested in Helio Robotics [1].", "question echoed"),
    (NEWS, "When did Northwind invest in Helio Robotics?", "Northwind invested in Helio Robotics in June [1].", "wrong month"),
    (NEWS, "How much did Northwind get for its Vexa Labs stake?", "Northwind got $300 million for its Vexa Labs stake [1].", "figure of another deal"),
    (MANUAL, "What is the default of log_rotation?", "log_rotation defaults to 64 MB [1].", "default of another setting"),
    (MANUAL, "What is the default cache_size?", "cache_size defaults to 7 days [1].", "default of another setting"),
    (MANUAL, "Does changing log_rotation require a restart?", "No, log_rotation can be changed without a restart [1].", "negation flipped"),
    (MANUAL, "Can backups run during a migration?", "Yes, backups can run while a migration is in progress [1].", "negation flipped"),
    (MANUAL, "What is the default of max_connections?", "max_connections defaults to 64 MB [1].", "unanswerable, figure reused"),
    (MANUAL, "Which command changes cache_size at runtime?", "The RESET command changes cache_size at runtime [1].", "invented name"),
    (MANUAL, "What is the default cache_size?", "The default cache_size is the default value of the cache_size setting [1].", "question echoed"),
    (MANUAL, "How long does log_rotation keep logs by default?", "log_rotation keeps logs for 64 days by default [1].", "invented figure"),
    (POLICY, "How many PTO days can be carried over?", "Up to 25 days can be carried over [1].", "figure of another rule"),
    (POLICY, "How many days of PTO do employees get?", "Employees get 5 days of PTO per year [1].", "figure of another rule"),
    (POLICY, "Are contractors eligible for PTO?", "Yes, contractors are eligible for PTO [1].", "negation flipped"),
    (POLICY, "Who approves PTO requests?", "The finance team approves PTO requests [1].", "wrong approver"),
    (POLICY, "How far in advance must PTO be requested?", "PTO must be requested at least five weeks in advance [1].", "spelled-out wrong figure"),
    (POLICY, "How long is parental leave?", "Employees receive 25 days of parental leave per year [1].", "unanswerable, figure reused"),
    (POLICY, "Who approves PTO requests?", "Contractors approve PTO requests [1].", "wrong approver from the passage"),
    (POLICY, "What is the PTO allowance for part-time staff?", "Part-time staff receive 25 days of PTO per year [1].", "unanswerable, figure reused"),
    (BRIDGE, "Who designed the bridge?", "The bridge was designed by Tomas Varga [1].", "wrong person"),
    (BRIDGE, "When did the bridge open?", "The bridge opened in 1921 [1].", "date of another event"),
    (BRIDGE, "How long is the main span?", "The main span is 1998 metres long [1].", "year used as a length"),
    (BRIDGE, "Since when had the ferry run?", "The ferry had run since 1998 [1].", "date of another event"),
    (BRIDGE, "Who operated the ferry service?", "Elena Varga operated the ferry service [1].", "unanswerable, person reused"),
    (BRIDGE, "How long is the bridge's main span?", "The main span is 420 kilometres long [1].", "wrong unit"),
    (BRIDGE, "What did the bridge replace?", "The bridge replaced an older bridge designed by Elena Varga [1].", "contradicts the passage"),
    (BRIDGE, "When was the ferry service closed?", "The ferry service closed in 1921 [1].", "unanswerable, date reused"),
    (NEWS, "Did Northwind keep its stake in Vexa Labs?", "Yes, Northwind kept its stake in Vexa Labs [1].", "question echoed, yes/no"),
    (MANUAL, "does log_rotation need a restart?", "No, log_rotation does not need a restart [1].", "question echoed, yes/no"),
    (BRIDGE, "Why did the bridge replace the ferry service?", "Because the bridge replaced the ferry service [1].", "question echoed, why"),
]
SUPPORTED = [
    (NEWS, "How much did Northwind invest in Helio Robotics?", "Northwind invested $300 million in Helio Robotics [1]."),
    (MANUAL, "Can backups run during a migration?", "No, backups cannot be run while a migration is in progress [1]."),
    (POLICY, "Who approves PTO requests?", "The line manager approves PTO requests [1]."),
    (BRIDGE, "When did the bridge open?", "The bridge opened in 1998 [1]."),
]


def _hit(text: str) -> Hit:
    chunk = Chunk(id=content_hash(text), doc_id=content_hash(text), source="doc.md", title="", text=text,
                  start=0, end=len(text))
    return Hit(chunk=chunk, score=1.0, rank=1, scores={"dense": 0.6})


MIN_REJECTED = 28  # of 35 at the shipped threshold; 30 measured (27 of the first 32, and the 3 echoes)
MIN_KEPT = 3  # of the 4 right drafts; 3 measured


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    config = Config.from_env({})
    return Verifier(ModelJudge(config), min_support=config.min_support, min_relevance=config.min_relevance)


def test_at_least_thirty_cases_in_four_domains():
    assert len(CASES) >= 30 and len({c[0] for c in CASES}) == 4


def test_wrong_drafts_are_rejected(verifier, capsys):
    shown = []
    for passage, question, draft, wrong in CASES:
        decision = verifier.decide(draft, Question(question), [_hit(passage)])
        if decision.answered and strip_citations(draft) in strip_citations(decision.text):
            shown.append((wrong, draft, decision.support))
    with capsys.disabled():
        print(f"\nwrong drafts shown at RAG_MIN_SUPPORT={verifier.min_support}: {len(shown)}/{len(CASES)}")
        for wrong, draft, support in shown:
            print(f"  {wrong}: {draft} (support {support})")
    assert len(CASES) - len(shown) >= MIN_REJECTED, shown


def test_right_drafts_are_kept(verifier, capsys):
    dropped = []
    for passage, question, draft in SUPPORTED:
        decision = verifier.decide(draft, Question(question), [_hit(passage)])
        if not (decision.answered and strip_citations(draft) == strip_citations(decision.text)):
            dropped.append((draft, decision.support))
    with capsys.disabled():
        print(f"\nright drafts dropped at RAG_MIN_SUPPORT={verifier.min_support}: {len(dropped)}/{len(SUPPORTED)}")
        for draft, support in dropped:
            print(f"  {draft} (support {support})")
    assert len(SUPPORTED) - len(dropped) >= MIN_KEPT, dropped
