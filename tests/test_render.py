"""Templates: placeholders, rendering whole columns, and lengths as the provider counts them."""

from __future__ import annotations

import pandas as pd
import pytest

from campaigns.errors import UserError
from campaigns.intake.render import (
    MAX_LENGTH,
    REASONS,
    placeholders,
    render,
    segments,
    too_long,
    utf16_length,
    utf16_lengths,
)

FRAME = pd.DataFrame(
    {"姓名": ["张三", " 李四 ", ""], "订单号": ["DD202611270001", "DD202611270002", "DD3"]},
    index=[10, 11, 12],
)


def test_placeholders_in_order_once_each() -> None:
    assert placeholders("{姓名}您好，订单{订单号}已发货，{姓名}") == ["姓名", "订单号"]
    assert placeholders("no fields, {{literal}} braces") == []


def test_render_fills_each_row_and_strips_values() -> None:
    content, reason = render("尊敬的{姓名}，您的订单{订单号}已发货{{退订回T}}", FRAME)
    assert content.tolist() == [
        "尊敬的张三，您的订单DD202611270001已发货{退订回T}",
        "尊敬的李四，您的订单DD202611270002已发货{退订回T}",
        "尊敬的，您的订单DD3已发货{退订回T}",
    ]
    assert reason.tolist() == ["", "", "empty_field:姓名"]
    assert content.index.tolist() == reason.index.tolist() == [10, 11, 12]


def test_first_empty_placeholder_is_the_reason() -> None:
    frame = pd.DataFrame({"a": ["", "x"], "b": ["", ""]})
    _, reason = render("{b}{a}", frame)
    assert reason.tolist() == ["empty_field:b", "empty_field:b"]


def test_missing_values_count_as_empty() -> None:
    frame = pd.DataFrame({"a": ["x", None]}, dtype=object)
    content, reason = render("hi {a}", frame)
    assert content.tolist() == ["hi x", "hi "]
    assert reason.tolist() == ["", "empty_field:a"]


def test_unknown_placeholder_lists_the_columns() -> None:
    with pytest.raises(UserError, match=r"\{名字\}, \{城市\}.*columns: 姓名, 订单号"):
        render("您好{名字}{姓名}{城市}", FRAME)


@pytest.mark.parametrize(
    "template", ["{", "}", "a {b", "{}", "{0}x{}", "{姓名:>5}", "{姓名!r}", " "]
)
def test_bad_templates_are_user_errors(template: str) -> None:
    with pytest.raises(UserError):
        render(template, FRAME)


@pytest.mark.parametrize(
    ("text", "length"),
    [("", 0), ("abc", 3), ("您好", 2), ("😀", 2), ("a😀b", 4), ("👍🏽", 4), ("é", 1)],
)
def test_utf16_length(text: str, length: int) -> None:
    assert utf16_length(text) == length
    assert utf16_lengths(pd.Series([text])).tolist() == [length]


@pytest.mark.parametrize(
    ("length", "parts"), [(0, 0), (1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (1000, 15)]
)
def test_segments(length: int, parts: int) -> None:
    assert segments(length) == parts


def test_too_long_counts_utf16_units() -> None:
    content = pd.Series(
        ["a" * MAX_LENGTH, "a" * (MAX_LENGTH + 1), "😀" * 500, "😀" * 500 + "a", "短"]
    )
    assert too_long(content).tolist() == [False, True, False, True, False]
    assert "too_long" in REASONS
