"""Keyword search of the `postgres` store: BM25's IDF over PostgreSQL full text, on a bounded candidate set.

`ts_rank` has no corpus statistics: a query's common words weigh as much as its rare ones, and an OR query
must rank every row that holds any of them (a third of the table for a question made of common words, 0.9 s
at 100k chunks). Here each query lexeme gets BM25's IDF from `rag_lexemes` (document frequency per lexeme,
kept by `PgStore.apply`), and a row scores the sum over the query's lexemes of IDF x `ts_rank` of that
lexeme alone (a tf saturation in [0.61, 1) for tf >= 1; our tsvectors carry one weight, D). So a lexeme can
add at most its IDF, and rows that hold only common lexemes cannot outrank rows that hold rare ones by much:
the rows ranked are those holding the query's rarest lexemes (their document frequencies summed within
`budget`), or, when even the rarest lexeme is common, those holding at least two of them (MaxScore-style
pruning, Turtle & Flood 1995). Every result says whether it is provably the top k of ranking every matching
row (`exact`): when the k-th score reaches the best score a row outside the candidates could have.
Leaves out BM25's length normalisation (chunks are of similar length by construction) and phrase queries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from index.records import Chunk

_CHUNK_COLUMNS = "id, doc_id, source, title, text, start_at, end_at"
_TS_RANK_LIMIT = 0.1  # ts_rank of one lexeme stays below the weight of class D (0.1): tf saturates towards it
_PAIR_TERMS = 6  # "at least two of" the rarest 6 lexemes: 15 AND pairs for the GIN index at most


@dataclass(frozen=True)
class Term:
    """One query lexeme found in the corpus. Example: Term("heapq", df=31, idf=7.9)."""

    lexeme: str
    df: int
    idf: float


@dataclass(frozen=True)
class Plan:
    """Which rows a query ranks, and the best score any other row could reach."""

    terms: tuple[Term, ...]  # every query lexeme the corpus holds, rarest first
    candidates: str  # tsquery text selecting the rows to rank
    outside_bound: float  # upper bound on the score of a row that `candidates` leaves out
    mode: str  # "all" (every matching row), "rare" (rows with a rare lexeme), "two" (with two lexemes)


@dataclass(frozen=True)
class KeywordResult:
    """The hits of one keyword search and the evidence for them (benchmarks count `exact`)."""

    hits: list[tuple[Chunk, float]]
    ranked: int  # candidate rows ranked
    exact: bool  # provably the top k of ranking every row that matches any query lexeme
    mode: str


def idf(df: int, n: int) -> float:
    """BM25's inverse document frequency (with +1, never negative). Example: idf(1, 100) -> 4.21"""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def plan(found: list[tuple[str, int]], n: int, budget: int) -> Plan | None:
    """The candidate rows for query lexemes with their document frequencies (`found`) in n chunks.

    Example: plan([("python", 900), ("heapq", 3)], 1000, 100).mode -> "rare" (rank the rows with "heapq")
    """
    terms = tuple(
        sorted((Term(lex, df, idf(df, n)) for lex, df in found if df > 0), key=lambda t: (t.df, t.lexeme))
    )
    if not terms:
        return None
    if sum(t.df for t in terms) <= budget or len(terms) == 1:
        return Plan(terms, _any(terms), 0.0, "all")
    if terms[0].df <= budget:
        rare, total = 0, 0
        while rare < len(terms) and total + terms[rare].df <= budget:
            total += terms[rare].df
            rare += 1
        rest = terms[rare:]
        return Plan(terms, _any(terms[:rare]), sum(t.idf for t in rest), "rare")
    # every lexeme is common: a row must hold two of the rarest few; one that holds one of them (and any
    # of the others) scores at most the largest IDF among them plus the IDFs of the others
    pair, rest = terms[:_PAIR_TERMS], terms[_PAIR_TERMS:]
    either = " | ".join(f"({_quote(a.lexeme)} & {_quote(b.lexeme)})" for a, b in combinations(pair, 2))
    return Plan(terms, either, max(t.idf for t in pair) + sum(t.idf for t in rest), "two")


def search(conn: Any, tokens: list[str], k: int, budget: int) -> KeywordResult:
    """Rank at most `budget` (+1) candidate rows for the keyword tokens of a query; the k best, best first."""
    found = conn.execute(
        "SELECT u.lexeme, l.df, m.chunks FROM unnest(to_tsvector('english', %s)) u "
        "JOIN rag_lexemes l ON l.lexeme = u.lexeme CROSS JOIN rag_manifest m",
        (" ".join(tokens),),
    ).fetchall()
    chosen = plan([(r[0], int(r[1])) for r in found], int(found[0][2]) if found else 0, budget)
    if chosen is None:
        return KeywordResult([], 0, True, "all")
    score = " + ".join(["%s * ts_rank(tsv, %s::tsquery)"] * len(chosen.terms))
    params: list[Any] = [x for t in chosen.terms for x in (t.idf / _TS_RANK_LIMIT, _quote(t.lexeme))]
    rows = conn.execute(
        f"SELECT {_CHUNK_COLUMNS}, {score} AS score, count(*) OVER () FROM "
        f"(SELECT seq, {_CHUNK_COLUMNS}, tsv FROM rag_chunks WHERE tsv @@ %s::tsquery LIMIT %s) c "
        "ORDER BY score DESC, seq LIMIT %s",
        (*params, chosen.candidates, budget + 1, k),  # one more than the budget: tells a cut from a fit
    ).fetchall()
    hits = [(Chunk(*r[:7]), float(r[7])) for r in rows if r[7] > 0]
    ranked = int(rows[0][8]) if rows else 0
    complete = ranked <= budget  # else LIMIT cut the candidates short, in no particular order
    kth = hits[-1][1] if len(hits) == k else 0.0
    exact = complete and (chosen.outside_bound == 0.0 or kth >= chosen.outside_bound)
    return KeywordResult(hits, ranked, exact, chosen.mode)


def _any(terms: tuple[Term, ...]) -> str:
    return " | ".join(_quote(t.lexeme) for t in terms)


def _quote(lexeme: str) -> str:
    """A lexeme as tsquery text. Example: _quote("it's") -> "'it''s'" """
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"
