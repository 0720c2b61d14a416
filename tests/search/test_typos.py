"""The edit distance and the choice of correction behind the embedded backend's typo tolerance."""

from __future__ import annotations

import pytest

from app.search.postgres import corrections, typos


@pytest.mark.parametrize(
    ("a", "b", "n"),
    [
        ("forest", "forest", 0),
        ("frest", "forest", 1),  # deletion
        ("forrest", "forest", 1),  # insertion
        ("forist", "forest", 1),  # substitution
        ("froest", "forest", 1),  # adjacent transposition: one typo, not two
        ("froets", "forest", 2),
        ("", "abc", 3),
        ("kitten", "sitting", 3),
    ],
)
def test_typos_counts_edits(a: str, b: str, n: int) -> None:
    assert typos(a, b, 5) == n
    assert typos(b, a, 5) == n


def test_typos_stops_past_the_limit() -> None:
    assert typos("biodiversity", "bio", 2) == 3
    assert typos("abcdefgh", "hgfedcba", 1) == 2


def test_corrections_take_the_fewest_typos_within_the_budget() -> None:
    assert corrections("peatlnds", ["peatland", "peatlands"]) == ["peatlands"]  # 2 typos vs 1
    assert corrections("peatlnds", ["peatland"]) == []  # 8 characters: one typo only
    assert corrections("biodvrsity", ["biodiversity"]) == ["biodiversity"]  # 10 characters: two
    assert corrections("reff", ["reef"]) == []  # 4 characters: none
    assert corrections("reefs", ["reef", "reefs"]) == []  # already a known word
    assert corrections("forst", ["forest", "forts", "frost", "fors"]) == ["forest", "forts", "frost"]  # one typo each
    assert corrections("corel", ["coral", "core", "cored", "coren", "corea"]) == ["coral", "core", "cored"]
