"""Fill a message template such as "尊敬的{姓名}，您的订单{订单号}已发货" for every recipient.

Whole columns are concatenated rather than formatting row by row, because a campaign can hold a
million rows.  Lengths are counted in UTF-16 code units, as the provider bills them.
"""

from __future__ import annotations

import string

import pandas as pd

from campaigns.errors import UserError

MAX_LENGTH = 1000  # the provider refuses longer content
SINGLE_SEGMENT = 70  # one SMS holds 70 units; longer messages are split ...
MULTI_SEGMENT = 67  # ... into parts of 67, the rest being the concatenation header

REASONS: dict[str, str] = {
    "empty_field": "A column used in the message is empty in this row.",
    "too_long": f"The filled-in message is longer than {MAX_LENGTH} characters; it cannot be sent.",
}

_ASTRAL = "[\U00010000-\U0010ffff]"  # characters that take two UTF-16 units (emoji and more)


def placeholders(template: str) -> list[str]:
    """Column names used by the template, each once, in order of first use."""
    return list(dict.fromkeys(name for _, name in _parts(template) if name is not None))


def render(template: str, frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Return (content, reason) per row of ``frame``.

    ``reason`` is "" or "empty_field:<column>" for the first placeholder whose value is blank.
    Values are stripped of surrounding spaces.  Raises UserError before rendering anything when
    a placeholder names no column, so a typo never produces a half-filled campaign.
    """
    parts = _parts(template)
    missing = [name for name in placeholders(template) if name not in frame.columns]
    if missing:
        columns = ", ".join(map(str, frame.columns))
        unknown = ", ".join(f"{{{name}}}" for name in missing)
        raise UserError(f"the template uses {unknown}, not columns of the file; columns: {columns}")
    content = pd.Series("", index=frame.index, dtype="str")
    reason = content
    for literal, name in parts:
        content = content + literal
        if name is not None:
            values = frame[name].astype("str").fillna("").str.strip()
            content = content + values
            reason = reason.mask((reason == "") & (values == ""), f"empty_field:{name}")
    return content, reason


def utf16_length(text: str) -> int:
    """Length as the provider counts it: UTF-16 code units, so an emoji counts 2."""
    return len(text.encode("utf-16-le")) // 2


def utf16_lengths(content: pd.Series) -> pd.Series:
    """utf16_length for a whole column: characters plus one more for each astral character."""
    return content.str.len() + content.str.count(_ASTRAL)


def too_long(content: pd.Series) -> pd.Series:
    """True where the provider would refuse the content for its length (reason ``too_long``)."""
    return utf16_lengths(content) > MAX_LENGTH


def segments(length: int) -> int:
    """How many SMS a message of ``length`` UTF-16 units is billed as."""
    if length <= SINGLE_SEGMENT:
        return min(length, 1)
    return -(-length // MULTI_SEGMENT)


def _parts(template: str) -> list[tuple[str, str | None]]:
    """(literal text, column name or None) pairs; "{{" and "}}" are literal braces."""
    if not template.strip():
        raise UserError("the message template is empty")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UserError(
            f"the template has unbalanced braces ({exc}); write {{{{ for a literal {{"
        ) from None
    for _, name, spec, conversion in parsed:
        if name == "" or spec or conversion:
            bad = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise UserError(f"placeholder {{{bad}}} must be a bare column name, like {{姓名}}")
    return [(literal, name) for literal, name, _, _ in parsed]
