"""Templates: placeholders, rendering whole columns, and lengths as the provider counts them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from campaigns.errors import UserError
from campaigns.intake.render import (
    BLOCKED,
    blocked_texts,
    check_placeholders,
    load_template,
    placeholders,
    render,
    segments,
    template_warnings,
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


def test_unknown_placeholder_suggests_the_closest_column() -> None:
    with pytest.raises(UserError) as caught:
        render("您好{名字}{姓名}{城市}{ 订单号 }", FRAME)
    assert str(caught.value) == (
        "the template uses {名字} (did you mean {姓名}?), {城市}, { 订单号 } (did you mean"
        " {订单号}?), not columns of the file; columns: 姓名, 订单号"
    )
    with pytest.raises(UserError) as caught:
        check_placeholders("{phone}", ["Phone", "name"], "a.csv")
    assert str(caught.value) == (
        "a.csv: the template uses {phone} (did you mean {Phone}?), not a column of the file;"
        " columns: Phone, name"
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "【店】您的订单}已发货",
            'the template has a "}" with no "{" before it at character 8 (after "【店】您的订单");'
            " write }} for a literal }",
        ),
        (
            "}开头",
            'the template has a "}" with no "{" before it at character 1; write }} for a literal }',
        ),
        (
            "{{姓名}",
            'the template has a "}" with no "{" before it at character 5 (after "{{姓名");'
            " write }} for a literal }",
        ),
        (
            "尊敬的{姓名您好",
            'the template has a "{" that is never closed at character 4 (before "姓名您好");'
            " write {{ for a literal {",
        ),
        (
            "{a{姓名}",
            'the template has a "{" that is never closed at character 1 (before "a{姓名}");'
            " write {{ for a literal {",
        ),
        (
            "【店】｛姓名｝您好",
            "the template writes ｛姓名｝ with full-width braces at character 4, which would be"
            " sent as they are; a placeholder takes ASCII braces: write {姓名}",
        ),
    ],
)
def test_brace_mistakes_point_at_the_character(template: str, message: str) -> None:
    with pytest.raises(UserError) as caught:
        render(template, FRAME)
    assert str(caught.value) == message


def test_escaped_and_lone_full_width_braces_are_text() -> None:
    content, _ = render("{{注意}}｛ {姓名}", FRAME.head(1))
    assert content.tolist() == ["{注意}｛ 张三"]


@pytest.mark.parametrize(
    "template", ["{", "}", "a {b", "{}", "{0}x{}", "{姓名:>5}", "{姓名!r}", " "]
)
def test_bad_templates_are_user_errors(template: str) -> None:
    with pytest.raises(UserError):
        render(template, FRAME)


@pytest.mark.parametrize(
    ("text", "length"),
    [("", 0), ("abc", 3), ("您好", 2), ("😀", 2), ("a😀b", 4), ("👍🏽", 4), ("é", 1), ("𠀀字", 3)],
)
def test_utf16_lengths_count_code_units(text: str, length: int) -> None:
    assert len(text.encode("utf-16-le")) // 2 == length  # what the provider counts
    assert utf16_lengths(pd.Series([text], dtype="str")).tolist() == [length]


def test_segments_70_single_then_67_per_part() -> None:
    units = [0, 1, 70, 71, 134, 135, 201, 202, 1000]
    assert segments(np.array(units)).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 15]
    assert segments(pd.Series(units)).tolist() == segments(np.array(units)).tolist()
    assert int(segments(70)) == 1


def test_check_placeholders_names_the_file() -> None:
    check_placeholders("{姓名}您好", ["手机号", "姓名"], "list.csv")
    with pytest.raises(
        UserError, match=r"^list\.csv: the template uses \{名字\}.*columns: 手机号, 姓名$"
    ):
        check_placeholders("{名字}您好", ["手机号", "姓名"], "list.csv")


def test_template_from_text_or_file(tmp_path: Path) -> None:
    assert load_template("【店】{姓名}", None) == "【店】{姓名}"
    path = tmp_path / "long.txt"
    path.write_bytes("\ufeff【店】{姓名}您好\r\n第二行\r\n\r\n".encode())
    assert load_template(None, path) == "【店】{姓名}您好\n第二行"  # Windows line breaks become \n
    for message, file in (("x", path), (None, None)):
        with pytest.raises(UserError, match="one of the two"):
            load_template(message, file)
    with pytest.raises(UserError, match="missing.txt: template file not found"):
        load_template(None, tmp_path / "missing.txt")
    (tmp_path / "gbk.txt").write_bytes("【店】您好".encode("gbk"))
    with pytest.raises(UserError, match="gbk.txt: the template file is not UTF-8"):
        load_template(None, tmp_path / "gbk.txt")


@pytest.mark.parametrize(
    ("template", "marketing", "expected"),
    [
        ("【店铺】{姓名}您好", False, []),
        ("{姓名}您好【店铺】", False, []),
        ("  【店铺】{姓名}您好", True, ["opt-out"]),
        ("【店铺】{姓名}您好,回T退订", True, []),
        ("【店铺】双十一大促,回td", True, []),
        ("{姓名}您好", False, ["signature"]),
        ("您好【店铺】,{姓名}", True, ["signature", "opt-out"]),
        ("[店铺]{姓名}您好", False, ["signature"]),
    ],
)
def test_template_warnings(template: str, marketing: bool, expected: list[str]) -> None:
    found = template_warnings(template, marketing=marketing)
    assert ["signature" if "签名" in w else "opt-out" for w in found] == expected
    assert all("\n" not in w for w in found)


def test_blocked_texts_greetings_and_digits() -> None:
    content = pd.Series(
        ["【店】你好!", "【店】 12132。", "您好 😀", "Hello", "【店】", "你好张三", "订单123", ""],
        dtype="str",
    )
    kinds = blocked_texts("{内容}", content)
    assert kinds.tolist() == [
        "greeting",
        "digits",
        "greeting",
        "greeting",
        "greeting",
        "",
        "",
        "greeting",
    ]
    assert set(kinds) - {""} <= set(BLOCKED)


def test_blocked_texts_skips_rows_when_the_template_has_content() -> None:
    content = pd.Series(["【店】你好"], dtype="str")  # cannot come from this template; not examined
    assert blocked_texts("【店】{姓名}您的订单已发货", content).tolist() == [""]
    assert blocked_texts("【店】{x}你好", content).tolist() == ["greeting"]
