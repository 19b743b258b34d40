"""Keyword tokens for BM25 and the fake embedder: lower-case words and numbers, stop words dropped.

Figures keep their decimals and lose currency signs and thousands separators, so "$650 million" and
"650 million" match, "$1.5 billion" gives "1.5", "G42" stays "g42". A light suffix rule folds plurals and
"-ed"/"-ing" forms ("investments" -> "investment", "invested" -> "invest"). Leaves out real stemming.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not now of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours yourself yourselves
    s t don doesn didn isn wasn weren""".split()
)


def keyword_tokens(text: str) -> list[str]:
    """Keyword tokens of a text.

    Example: keyword_tokens("Microsoft's $650 million, G42") -> ['microsoft', '650', 'million', 'g42']
    """
    out = []
    for tok in _TOKEN.findall(text.lower()):
        if tok[0].isdigit():
            tok = tok.replace(",", "")
        elif "," in tok or "." in tok:
            tok = re.split(r"[.,]", tok, maxsplit=1)[0]
        if tok in STOPWORDS:
            continue
        out.append(_fold(tok))
    return out


def _fold(tok: str) -> str:
    if not tok.isalpha() or len(tok) <= 4:
        return tok
    if tok.endswith("ies") and len(tok) > 5:
        return tok[:-3] + "y"
    if tok.endswith("s") and not tok.endswith(("ss", "us", "is")):
        return tok[:-1]
    if tok.endswith("ing") and len(tok) > 6:
        return tok[:-3]
    if tok.endswith("ed") and len(tok) > 5:
        return tok[:-2]
    return tok
