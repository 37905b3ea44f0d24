"""Text from outside (a file's cells and headers, campaign names, templates, receipts) made inert
before any spreadsheet sees it: one rule for every string, in every report and rejects file.

A spreadsheet takes a cell starting with = + - @ (and tab or CR, per OWASP) for a formula; a
leading ' makes it text.  XML 1.0, and so .xlsx, cannot hold most control characters at all.
"""

from __future__ import annotations

import re

import pandas as pd

FORMULA_START = r"[=+\-@\t\r]"
NOT_XML = "[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]"  # characters XML 1.0 cannot hold
_FORMULA = re.compile(FORMULA_START)


def inert(text: str) -> str:
    """``text`` with a leading ' when a spreadsheet would run it (=HYPERLINK(…), +1, @SUM…)."""
    return "'" + text if _FORMULA.match(text) else text


def xml_safe(text: str) -> str:
    return re.sub(NOT_XML, "", text)


def neutralise(table: pd.DataFrame, *, xlsx: bool = False) -> pd.DataFrame:
    """``inert`` over every text cell and every column name; numbers stay numbers.

    A mainland phone never starts with these; an international one (+44…) gets the ' too, which
    keeps Excel from reading it as a number, and which import strips again when a retry list is
    imported.  ``xlsx`` also drops the characters an .xlsx cannot hold.
    """
    changed = {}
    for position, (_, column) in enumerate(table.items()):
        if pd.api.types.is_string_dtype(column):
            text = column.str.replace(NOT_XML, "", regex=True) if xlsx else column
            risky = text.str.match(FORMULA_START).fillna(False).astype(bool)
            if risky.any() or xlsx:
                changed[position] = text.mask(risky, "'" + text)
    names = [inert(xml_safe(str(name)) if xlsx else str(name)) for name in table.columns]
    if not changed and names == list(table.columns):
        return table
    table = table.copy()
    for position, column in changed.items():
        table.isetitem(position, column)
    table.columns = names
    return table
