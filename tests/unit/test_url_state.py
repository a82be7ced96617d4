"""The one codec of a link's query parameters (explorer_core.url_state): untrusted text never raises, a
parameter that does not parse is left out, the parsers keep their ranges and choices."""

from __future__ import annotations

import pytest

from explorer_core.url_state import MAX_TEXT, finite_float, int_in, one_of, read_query


def test_parameters_that_parse_are_read_and_the_others_left_out():
    query = {"seed": "7", "u": "nan", "v": "1.5", "k": "x" * 1000, "lr": "0.001", "posterior": "full"}
    spec = {
        "seed": int_in(0, 10),
        "u": finite_float,
        "v": finite_float,
        "k": int_in(1, 64),
        "lr": one_of((0.01, 0.001)),
        "posterior": one_of(("diagonal", "full")),
        "missing": int,
    }
    assert read_query(query, spec) == {"seed": 7, "v": 1.5, "lr": 0.001, "posterior": "full"}


@pytest.mark.parametrize("text", ["-1", "11", "1e3", "", " ", "9" * 400, "0x5"])
def test_a_number_out_of_range_or_malformed_is_ignored(text):
    assert read_query({"n": text}, {"n": int_in(0, 10)}) == {}


def test_the_text_is_cut_before_it_is_parsed():
    seen = []
    read_query({"a": "1" * 500}, {"a": seen.append})
    assert len(seen[0]) == MAX_TEXT


def test_a_float_choice_matches_by_value_and_text():
    parse = one_of((0.0003, 0.001, 0.01))
    assert parse("3e-4") == 0.0003 and parse("0.001") == 0.001
    with pytest.raises(ValueError):
        parse("0.002")
    with pytest.raises(ValueError):
        one_of(("a", "b"))("c")
