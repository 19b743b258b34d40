"""Hard-wrapped lines joined in place (index/unwrap.py); the texts are made up for these tests."""

from __future__ import annotations

import pytest

from index.unwrap import unwrap, wrap_width

pytestmark = pytest.mark.unit

WRAPPED = (
    "# Leave\n"
    "\n"
    "Requests for more than three days go to your line manager, who approves\n"
    "or declines them within five working days. Requests that arrive late may be\n"
    "**refused** without a reason; see the table below for the exceptions to this.\n"
    "\n"
    "| Kind | Days |\n"
    "|---|---|\n"
    "| Moving | 1 |\n"
    "\n"
    "- Volunteering days are paid and must be taken in whole days, never in\n"
    "  half days or hours.\n"
    "- Study leave is paid.\n"
    "\n"
    "```\n"
    "code line one that is long enough to look like a wrapped line of prose\n"
    "code line two\n"
    "```\n"
)


def test_soft_breaks_become_spaces_and_offsets_stay():
    out = unwrap(WRAPPED)
    assert len(out) == len(WRAPPED)
    assert "who approves or declines them within five working days." in out
    assert "Requests that arrive late may be **refused** without a reason" in out
    assert "never in   half days" in out  # a list item's continuation joins its item


def test_structure_keeps_its_line_breaks():
    out = unwrap(WRAPPED)
    assert out.startswith("# Leave\n\n")
    assert "| Kind | Days |\n|---|---|\n| Moving | 1 |\n" in out
    assert "half days or hours.\n- Study leave is paid." in out
    assert "prose\ncode line two\n```" in out  # fenced code is left alone
    assert "for the exceptions to this.\n\n|" in out


def test_titles_and_unwrapped_files_are_left_alone():
    one_paragraph_per_line = ("Origins of the Partnership\n"
                              "In 2019 the company invested a large sum in the lab, aiming to speed up "
                              "research and to bring new capabilities into its cloud products for "
                              "customers.\n"
                              "Early Days\n"
                              "The first years were calm.\n")
    assert unwrap(one_paragraph_per_line) == one_paragraph_per_line
    address = "Norrvik B.V.\nKanaalweg 12\nUtrecht\n"
    assert unwrap(address) == address


def test_a_short_line_still_joins_when_the_sentence_goes_on_in_lower_case():
    assert unwrap("The fee is\npaid monthly.") == "The fee is paid monthly."


def test_wrap_width_is_the_long_line_length():
    assert wrap_width(["a" * 80, "b" * 78, "c" * 20, ""]) == 80
    assert wrap_width([]) == 0
