"""CSV that Excel on Windows opens with Chinese intact and never executes.

The recipients go to FILE.csv; delivery by carrier and province goes next to it, to
FILE.breakdown.csv (CSV holds one table per file).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from campaigns.reports.summary import Summary

ENCODING = "utf-8-sig"  # the BOM makes Excel read UTF-8 instead of the system code page (GBK)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# A spreadsheet treats a cell starting with these as a formula (tab and CR as well, per OWASP).
FORMULA_START = r"[=+\-@\t\r]"


def neutralise(table: pd.DataFrame) -> pd.DataFrame:
    """Prefix ' to text cells a spreadsheet would run as a formula (=HYPERLINK(…), +1, @SUM…).

    Only text columns, so numbers stay numbers.  A mainland phone never starts with these; an
    international one (+44…) gets the ' too, which keeps Excel from reading it as a number, and
    which import strips again when a retry list is imported.
    """
    changed = {}
    for name, column in table.items():
        if pd.api.types.is_string_dtype(column):
            risky = column.str.match(FORMULA_START).fillna(False).astype(bool)
            if risky.any():
                changed[name] = column.mask(risky, "'" + column)
    return table.assign(**changed)


def breakdown_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.breakdown.csv")


def breakdown_table(summary: Summary) -> pd.DataFrame:
    """Carrier rows, then province rows, in one table with a ``by`` column to filter on."""
    parts = [
        table.rename_axis("name").reset_index().assign(by=by)
        for by, table in (("carrier", summary.by_carrier), ("province", summary.by_province))
    ]
    both = pd.concat(parts, ignore_index=True)
    rates = ["delivery_rate", "failure_rate"]
    both[rates] = both[rates].round(4)
    return both[["by", "name", *summary.by_carrier.columns]]


def write(rows: pd.DataFrame, summary: Summary, output: Path) -> None:
    """FILE.csv with one row per recipient and FILE.breakdown.csv beside it."""
    neutralise(rows).to_csv(output, index=False, encoding=ENCODING, date_format=TIME_FORMAT)
    neutralise(breakdown_table(summary)).to_csv(
        breakdown_path(output), index=False, encoding=ENCODING
    )
