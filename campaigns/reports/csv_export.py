"""CSV that Excel on Windows opens with Chinese intact and never executes.

The recipients go to FILE.csv, a chunk at a time; delivery by carrier and province goes next to
it, to FILE.breakdown.csv (CSV holds one table per file).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from campaigns.reports.cells import neutralise
from campaigns.reports.rows import Rows
from campaigns.reports.summary import Summary

ENCODING = "utf-8-sig"  # the BOM makes Excel read UTF-8 instead of the system code page (GBK)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


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


def write(rows: Rows, summary: Summary, output: Path) -> None:
    """FILE.csv with one row per recipient and FILE.breakdown.csv beside it."""
    with output.open("w", encoding=ENCODING, newline="") as handle:
        neutralise(pd.DataFrame(columns=rows.columns)).to_csv(handle, index=False)
        for chunk in rows.chunks():
            neutralise(chunk).to_csv(handle, index=False, header=False, date_format=TIME_FORMAT)
    neutralise(breakdown_table(summary)).to_csv(
        breakdown_path(output), index=False, encoding=ENCODING
    )
