"""Answer normalisation, so that equivalent phrasings of a fact compare equal.

Covers: case, Unicode punctuation and dashes, articles, currency markers ("$", "US$", "dollars", "USD"),
magnitudes ("650 million", "$650M", "1.5bn", "1,500 million" -> one integer), number words ("ten days"),
percentages ("20%" / "20 per cent"), month abbreviations and ordinals in dates ("Nov. 3rd, 2023").
Leaves out: units other than money and percent, ranges, fractions written as words, non-English text.

Example: normalize_answer("US$650M") -> "650000000"
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS: dict[str, int] = {w: i for i, w in enumerate(_UNITS)}
NUMBER_WORDS.update({w: 20 + 10 * i for i, w in enumerate(_TENS)})
NUMBER_WORDS.update({"a dozen": 12, "dozen": 12, "hundred": 100})

SCALES: dict[str, int] = {
    "thousand": 10**3, "k": 10**3,
    "million": 10**6, "millions": 10**6, "mn": 10**6, "mln": 10**6, "m": 10**6,
    "billion": 10**9, "billions": 10**9, "bn": 10**9, "b": 10**9,
    "trillion": 10**12, "trillions": 10**12, "tn": 10**12, "t": 10**12,
}

MONTHS = {m[:3]: m for m in ("january february march april may june july august september october "
                               "november december").split()}
MONTHS["sept"] = "september"

ARTICLES = {"a", "an", "the"}

# Abbreviated scales ("m", "bn") only count when glued to a figure or after a currency sign, so "5 m" in
# prose stays; spelled-out scales always count.
_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?|\d*\.\d+"
_MONEY_RE = re.compile(
    rf"(?:(?:us|usd|u\.s\.)\s*)?\$\s*(?P<a>{_NUM})\s*(?P<as>thousand|millions?|billions?|trillions?|"
    rf"mn|mln|bn|tn|[kmbt])?\b"
    rf"|(?<![\w.])(?P<b>{_NUM})(?:\s*(?P<bs>thousand|millions?|billions?|trillions?)\b|(?P<bg>mn|mln|bn|tn|[kmbt])\b)",
    re.IGNORECASE,
)
_CURRENCY_WORDS = re.compile(r"\b(?:us\s+dollars?|u\.s\.\s+dollars?|dollars?|usd|us\$)\b|\$", re.IGNORECASE)
_PERCENT_RE = re.compile(r"(\d)\s*(?:%|\bper\s*cent\b|\bpercent\b|\bpct\b)", re.IGNORECASE)
_ORDINAL_RE = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.IGNORECASE)
_NUMBER_WORD_RE = re.compile(
    r"\b(?:(?P<tens>" + "|".join(_TENS) + r")(?:[\s-](?P<unit>" + "|".join(_UNITS[1:10]) + r"))?"
    r"|(?P<word>" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r"))\b",
    re.IGNORECASE,
)
_SENTENCE_MARKER_RE = re.compile(r"\[\d+(?:\s*[,;-]\s*\d+)*\]")


def _format_number(value: Decimal) -> str:
    """Example: Decimal("1500000000.0") -> "1500000000"; Decimal("1.50") -> "1.5"."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def _scaled(figure: str, scale: str | None) -> str:
    try:
        value = Decimal(figure.replace(",", ""))
    except InvalidOperation:
        return figure
    if scale:
        value *= SCALES[scale.lower()]
    return _format_number(value)


def _money(match: re.Match[str]) -> str:
    if match.group("a") is not None:
        return " " + _scaled(match.group("a"), match.group("as")) + " "
    return " " + _scaled(match.group("b"), match.group("bs") or match.group("bg")) + " "


def _number_words(match: re.Match[str]) -> str:
    if match.group("tens"):
        value = NUMBER_WORDS[match.group("tens").lower()]
        if match.group("unit"):
            value += NUMBER_WORDS[match.group("unit").lower()]
        return str(value)
    return str(NUMBER_WORDS[match.group("word").lower()])


def _unicode_fold(text: str) -> str:
    """NFKC, then every dash/hyphen variant to "-" and curly quotes to straight ones."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[\u2010-\u2015\u2212]", "-", text)
    return text.replace("\u2018", "'").replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')


def normalize_answer(text: str) -> str:
    """Canonical lower-case form of an answer or a passage, tokens separated by single spaces.

    Example: normalize_answer("The deal: $1.5 billion!") -> "deal 1500000000"
    """
    text = _unicode_fold(text).lower()
    text = _SENTENCE_MARKER_RE.sub(" ", text)  # citation markers such as [1] or [1, 2]
    text = _NUMBER_WORD_RE.sub(_number_words, text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # thousands separators: "1,500,000" -> "1500000"
    text = _MONEY_RE.sub(_money, text)
    text = _CURRENCY_WORDS.sub(" ", text)
    text = _PERCENT_RE.sub(r"\1 percent", text)
    text = _ORDINAL_RE.sub(r"\1", text)
    text = re.sub(r"\b(jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\b\.?",
                  lambda m: MONTHS[m.group(1)], text)
    text = re.sub(r"'s\b", "", text)  # possessives: "Microsoft's" -> "microsoft"
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)  # keep decimal points, drop full stops
    text = re.sub(r"[^\w.\s]", " ", text)
    return " ".join(t for t in text.split() if t not in ARTICLES)


def tokens(text: str) -> list[str]:
    """Normalised tokens. Example: tokens("Ten days.") -> ["10", "days"]."""
    return normalize_answer(text).split()


def contains_phrase(haystack: str, needle: str) -> bool:
    """True if the normalised `needle` occurs as a whole-token run in the normalised `haystack`.

    Example: contains_phrase("It took just ten days.", "10 days") -> True
    """
    n = normalize_answer(needle)
    if not n:
        return False
    return f" {n} " in f" {normalize_answer(haystack)} "


def is_number(token: str) -> bool:
    """Example: is_number("1500000000") -> True; is_number("2032") -> True; is_number("gpt") -> False."""
    return bool(re.fullmatch(r"\d+(?:\.\d+)?", token))
