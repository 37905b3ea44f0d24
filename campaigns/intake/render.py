"""Fill a message template such as "尊敬的{姓名}，您的订单{订单号}已发货" for every recipient,
count what it will cost, and warn about content carriers block.

Whole columns are concatenated rather than formatting row by row, because a campaign can hold a
million rows.  Lengths are counted in UTF-16 code units, as the provider counts and bills them.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaigns.errors import UserError
from campaigns.intake.read import listed_columns
from campaigns.reasons import MAX_LENGTH as MAX_LENGTH  # re-exported
from campaigns.reasons import RENDER_REASONS

# Concatenated SMS (3GPP TS 23.038 / 23.040): Chinese text travels as UCS-2, so one SMS holds
# 70 characters; a longer text is split into parts that each give 6 bytes (3 characters) to the
# concatenation header (UDH), leaving 67.  The provider bills one SMS per part.
SINGLE_SEGMENT = 70
MULTI_SEGMENT = 67

REASONS = RENDER_REASONS

BLOCKED: dict[str, str] = {  # kinds of blocked_texts(), as warnings
    "greeting": (
        "{count} message(s) say nothing but a greeting such as 你好 (first at row {row});"
        " carriers may block texts without content (运营商可能屏蔽)"
    ),
    "digits": (
        "{count} message(s) are only digits (first at row {row});"
        " carriers may block texts without content (运营商可能屏蔽)"
    ),
}

_ASTRAL = "[\U00010000-\U0010ffff]"  # characters that take two UTF-16 units (emoji and more)
_SIGNATURE = re.compile(r"^\s*【[^【】]+】|【[^【】]+】\s*$")
_OPT_OUT = re.compile(r"退订|回T", re.IGNORECASE)  # 回T also covers 回TD
# What a carrier's filter sees past: the signature, spaces, punctuation and symbols (RE2 classes).
_NOT_CONTENT = r"【[^【】]*】|[\p{Z}\s\p{P}\p{S}]"
_GREETINGS = ("你好", "您好", "hi", "hello", "")  # "" is a signature and nothing else
_FULL_WIDTH = re.compile("｛([^｛｝{}]*)｝")  # what a Chinese keyboard types for { and }


def load_template(message: str | None, template_file: str | Path | None) -> str:
    """The template given as text, or read from a UTF-8 file (for long texts) without its final
    line break, which an editor adds and the recipient would otherwise receive."""
    if (message is None) == (template_file is None):
        raise UserError("give the message either as text or as a template file (one of the two)")
    if message is not None:
        return message
    assert template_file is not None  # exactly one of the two was given
    path = Path(template_file)
    try:
        return path.read_text(encoding="utf-8-sig").rstrip("\r\n")
    except FileNotFoundError:
        raise UserError(f"{path}: template file not found") from None
    except UnicodeDecodeError:
        raise UserError(
            f"{path.name}: the template file is not UTF-8 text; save it as UTF-8"
        ) from None
    except OSError as exc:
        raise UserError(f"{path.name}: cannot be read ({exc.strerror})") from None


def placeholders(template: str) -> list[str]:
    """Column names used by the template, each once, in order of first use."""
    return list(dict.fromkeys(name for _, name in _parts(template) if name is not None))


def check_placeholders(template: str, columns: Sequence[str], where: str = "") -> None:
    """Raise UserError (naming the file ``where``) when a placeholder names no column, so that a
    typo fails before anything is rendered or stored; suggest the closest column."""
    names = [str(column) for column in columns]
    missing = [name for name in placeholders(template) if name not in names]
    if missing:
        unknown = ", ".join(f"{{{name}}}{_suggestion(name, names)}" for name in missing)
        what = "not a column" if len(missing) == 1 else "not columns"
        prefix = f"{where}: " if where else ""
        raise UserError(
            f"{prefix}the template uses {unknown}, {what} of the file;"
            f" columns: {listed_columns(names)}"
        )


def _suggestion(name: str, columns: list[str]) -> str:
    """ " (did you mean {姓名}?)" for the column ``name`` most likely meant, else ""."""
    folded = {"".join(column.split()).lower(): column for column in columns}
    same = folded.get("".join(name.split()).lower())
    close = [same] if same else difflib.get_close_matches(name, columns, n=1, cutoff=0.5)
    return f" (did you mean {{{close[0]}}}?)" if close else ""


def render(template: str, frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Return (content, reason) per row of ``frame``.

    ``reason`` is "" or "empty_field:<column>" for the first placeholder whose value is blank.
    Values are stripped of surrounding spaces.
    """
    check_placeholders(template, list(frame.columns))
    reason = pd.Series("", index=frame.index, dtype="str")
    pieces: list[str | pd.Series] = []
    for literal, name in _parts(template):
        pieces.append(literal)
        if name is not None:
            values = frame[name].astype("str").fillna("").str.strip()
            pieces.append(values)
            reason = reason.mask((reason == "") & (values == ""), f"empty_field:{name}")
    return join_text(pieces, frame.index), reason


def join_text(pieces: Sequence[str | pd.Series], index: pd.Index) -> pd.Series:
    """Literal strings and text columns concatenated row by row, in one pass of pyarrow's
    binary_join_element_wise: chaining pandas' ``+`` costs a pass and a copy per piece."""
    text = pa.large_string()  # what pandas' "str" columns hold
    arrays = [pa.scalar(p, text) if isinstance(p, str) else pa.array(p, type=text) for p in pieces]
    if not any(isinstance(array, pa.ChunkedArray | pa.Array) for array in arrays):
        arrays.append(pa.array([""] * len(index), text))  # all literal: one value per row
    joined = pc.binary_join_element_wise(*arrays, pa.scalar("", text))
    return joined.to_pandas().set_axis(index)


def utf16_lengths(content: pd.Series) -> pd.Series:
    """Length as the provider counts it, UTF-16 code units: characters plus one more for each
    astral character (an emoji counts 2)."""
    return content.str.len() + content.str.count(_ASTRAL)


def segments(units: np.ndarray | pd.Series) -> np.ndarray:
    """SMS billed per message of ``units`` UTF-16 units: 1 up to 70, else ⌈units / 67⌉ (0 for
    an empty message)."""
    units = np.asarray(units, dtype=np.int64)
    return np.where(units > SINGLE_SEGMENT, -(-units // MULTI_SEGMENT), np.minimum(units, 1))


def template_warnings(template: str, *, marketing: bool) -> list[str]:
    """What the provider and carriers object to in the template itself (warnings, not errors)."""
    warnings = []
    if not _SIGNATURE.search(template):
        warnings.append(
            "the message has no signature such as 【店铺名】 (签名) at its start or end;"
            " the provider and carriers require one"
        )
    if marketing and not _OPT_OUT.search(template):
        warnings.append(
            "marketing message without an opt-out phrase (退订), such as 回T退订 or 回TD退订;"
            " carriers block marketing texts without one"
        )
    return warnings


def blocked_texts(template: str, content: pd.Series) -> pd.Series:
    """Per message, a key of BLOCKED when it is only a greeting or only digits, which the
    provider's document says carriers may block ("你好", "12132"); else "".

    The rows are only examined when the template's own text could leave such a message (a
    literal "您的订单" never can), which keeps a million-row import from paying for a regex.
    """
    literal = pd.Series(["".join(text for text, _ in _parts(template))], dtype="str")
    if set(_core(literal).iloc[0]) - set("0123456789" + "".join(_GREETINGS)):
        return pd.Series("", index=content.index, dtype="str")
    core = _core(content)
    kinds = np.select(
        [core.isin(_GREETINGS).to_numpy(), core.str.fullmatch("[0-9]+").to_numpy(dtype=bool)],
        ["greeting", "digits"],
        "",
    )
    return pd.Series(kinds, index=content.index, dtype="str")


def _core(texts: pd.Series) -> pd.Series:
    return texts.str.replace(_NOT_CONTENT, "", regex=True).str.lower()


def _parts(template: str) -> list[tuple[str, str | None]]:
    """(literal text, column name or None) pairs; "{{" and "}}" are literal braces."""
    if not template.strip():
        raise UserError("the message template is empty")
    _check_braces(template)
    parsed = list(string.Formatter().parse(template))
    for _, name, spec, conversion in parsed:
        if name is not None and (name == "" or spec or conversion):
            bad = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise UserError(f"placeholder {{{bad}}} must be a bare column name, like {{姓名}}")
    return [(literal, name) for literal, name, _, _ in parsed]


def _check_braces(template: str) -> None:
    """Refuse full-width braces around a name and braces that do not pair, pointing at the
    character (counted from 1) and giving the escape that was probably meant."""
    wide = _FULL_WIDTH.search(template)
    if wide:
        raise UserError(
            f"the template writes {wide.group()} with full-width braces at character"
            f" {wide.start() + 1}, which would be sent as they are; a placeholder takes ASCII"
            f" braces: write {{{wide.group(1)}}}"
        )
    position = 0
    while position < len(template):
        if template.startswith(("{{", "}}"), position):
            position += 2
        elif template[position] == "}":
            raise UserError(
                f'the template has a "}}" with no "{{" before it at character {position + 1}'
                f"{_context('after', template[max(position - 8, 0) : position])};"
                " write }} for a literal }"
            )
        elif template[position] == "{":
            close = template.find("}", position)
            if close == -1 or "{" in template[position + 1 : close]:
                raise UserError(
                    f'the template has a "{{" that is never closed at character {position + 1}'
                    f"{_context('before', template[position + 1 : position + 9])};"
                    " write {{ for a literal {"
                )
            position = close + 1
        else:
            position += 1


def _context(side: str, text: str) -> str:
    """' (after "您的订单")': the text beside a stray brace, so that it can be found."""
    return f' ({side} "{text}")' if text else ""
