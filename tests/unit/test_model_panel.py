"""The shared metrics row's formatting: damaged or missing figures in a model's JSON show as a dash."""

from __future__ import annotations

import pytest

from views.components.model_panel import Metric, number


@pytest.mark.parametrize(
    ("value", "fmt", "shown"),
    [
        (-88.123, "{:.2f}", "-88.12"),
        (0.835, "{:.2%}", "83.50%"),
        (7, "{}", "7"),
        (None, "{:.2f}", "–"),
        ("abc", "{:.2f}", "–"),
        (True, "{}", "–"),
        ([1, 2], "{}", "–"),
    ],
)
def test_number_shows_only_numbers(value, fmt, shown):
    assert number(value, fmt) == shown


def test_a_metric_with_text_shows_the_text():
    assert Metric("C · L", text="10 · 20").shown() == "10 · 20"
    assert Metric("ELBO", -90.0, "{:.1f}").shown() == "-90.0"
