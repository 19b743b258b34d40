"""Keyword search of the PostgreSQL store (index/pg_keyword.py): the candidate plan, the document
frequencies kept by `apply`, and pruned ranking against ranking every matching row. Real PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from index.builder import build_index
from index.fake import HashingEmbedder
from index.pg_keyword import idf, plan
from index.pg_store import PgStore

QUESTIONS = [
    "Inflection funding amount from Microsoft",
    "G42 headquarters city",
    "Altman removal by the OpenAI board",
    "Which companies adopted the Phi-3 models?",
    "What did Microsoft say about its partnership with OpenAI and the board?",
]


@pytest.mark.unit
class TestPlan:
    def test_idf_is_bm25_and_never_negative(self) -> None:
        assert idf(1, 100) == pytest.approx(4.2097, abs=1e-4)  # ln(1 + 99.5 / 1.5)
        assert idf(100, 100) > 0 and idf(1, 100) > idf(10, 100) > idf(90, 100)

    def test_few_matching_rows_are_all_ranked(self) -> None:
        p = plan([("python", 40), ("heapq", 3), ("zzz", 0)], 1000, budget=100)
        assert p is not None and p.mode == "all" and p.outside_bound == 0.0
        assert [t.lexeme for t in p.terms] == ["heapq", "python"]  # rarest first; absent lexemes dropped

    def test_rare_terms_generate_candidates_and_bound_the_rest(self) -> None:
        p = plan([("python", 900), ("list", 500), ("heapq", 3), ("merg", 60)], 1000, budget=100)
        assert p is not None and p.mode == "rare" and p.candidates == "'heapq' | 'merg'"
        assert p.outside_bound == pytest.approx(idf(900, 1000) + idf(500, 1000))

    def test_only_common_terms_need_two_of_them(self) -> None:
        p = plan([("python", 900), ("list", 500), ("function", 700)], 1000, budget=100)
        assert p is not None and p.mode == "two"
        assert p.candidates == "('list' & 'function') | ('list' & 'python') | ('function' & 'python')"
        assert p.outside_bound == pytest.approx(idf(500, 1000))  # one lexeme of three, the rarest

    def test_nothing_found(self) -> None:
        assert plan([], 0, 100) is None and plan([("zzz", 0)], 10, 100) is None


def _recount(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT word, ndoc FROM ts_stat('SELECT tsv FROM rag_chunks')").fetchall()
    return {w: int(n) for w, n in rows}


def _stored(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {w: int(n) for w, n in conn.execute("SELECT lexeme, df FROM rag_lexemes").fetchall()}


@pytest.mark.integration
def test_document_frequencies_follow_every_run(pg_url: str, seeds_dir: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(seeds_dir, corpus)
    store = PgStore.connect(pg_url, must_exist=False)
    build_index([corpus], "", HashingEmbedder(), store=store, progress=False)
    assert _stored(pg_url) == _recount(pg_url) and _stored(pg_url)["inflect"] >= 1
    (corpus / "new.md").write_text("# Falcons\n\nFalcons fly fast. They hunt birds over Inflection.\n")
    target = corpus / "004_a29f32fd67d13242.txt"
    target.write_text(target.read_text().replace("Mustafa Suleyman", "Mustafa S."))
    (corpus / "003_05a5782cf9efb8ba.txt").unlink()
    build_index([corpus], "", HashingEmbedder(), store=store, progress=False)
    assert _stored(pg_url) == _recount(pg_url) and _stored(pg_url)["falcon"] == 1
    store.close()


@pytest.mark.integration
def test_schema_step_3_counts_an_existing_index(pg_url: str, seeds_dir: Path) -> None:
    """A database indexed before `rag_lexemes` existed gets its frequencies when it is migrated."""
    store = PgStore.connect(pg_url, must_exist=False)
    build_index([seeds_dir], "", HashingEmbedder(), store=store, progress=False)
    store.close()
    with psycopg.connect(pg_url) as conn:
        conn.execute("DROP TABLE rag_lexemes")
        conn.execute("DELETE FROM rag_schema WHERE version = 3")
    PgStore.connect(pg_url).close()
    assert _stored(pg_url) == _recount(pg_url) != {}


@pytest.mark.integration
@pytest.mark.parametrize("budget", [1, 3, 10, 30])
def test_pruned_ranking_is_the_full_ranking_when_it_says_exact(
    pg_url: str, seeds_dir: Path, budget: int
) -> None:
    store = PgStore.connect(pg_url, must_exist=False)
    build_index([seeds_dir], "", HashingEmbedder(), store=store, progress=False)
    for q in QUESTIONS:
        store.keyword_budget = 10**6
        full = store.keyword(q, 5)
        assert full.exact and full.mode == "all"
        store.keyword_budget = budget
        pruned = store.keyword(q, 5)
        assert pruned.ranked <= budget + 1
        if pruned.exact:
            assert [c.id for c, _ in pruned.hits] == [c.id for c, _ in full.hits]
            assert [s for _, s in pruned.hits] == pytest.approx([s for _, s in full.hits])
    store.close()


@pytest.mark.integration
def test_rare_terms_rank_first(pg_url: str, seeds_dir: Path) -> None:
    """IDF: the passage naming the rare term wins over passages repeating common words."""
    store = PgStore.connect(pg_url, must_exist=False)
    build_index([seeds_dir], "", HashingEmbedder(), store=store, progress=False)
    hits = store.search_keyword("Microsoft invest Inflection", 3)
    assert hits and "Inflection" in hits[0][0].text
    store.close()
