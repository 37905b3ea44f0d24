"""Delivery reports that people open: CSV and XLSX for operations, HTML charts for management.

    write_report(ReportData(frame, status, template), Path("spring.xlsx"), mask=True)

The format follows the file's extension.  Every format carries the same recipient columns (see
``table.report_table``) and the same campaign summary (see ``summary.summarise``), including
delivery by carrier and province.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from campaigns.errors import UserError
from campaigns.reports import csv_export, html, xlsx
from campaigns.reports.summary import ReportData, StatusLike, Summary, scope_of, summarise
from campaigns.reports.table import rejects_table, report_table

Writer = Callable[[pd.DataFrame, Summary, Path], None]
WRITERS: dict[str, Writer] = {
    ".csv": csv_export.write,
    ".xlsx": xlsx.write,
    ".html": html.write,
    ".htm": html.write,
}


def write_report(
    data: ReportData, output: Path, *, mask: bool = False, rejects_only: bool = False
) -> int:
    """Write the report for ``data`` to ``output`` (.csv, .xlsx or .html); returns the number of
    recipient rows it covers.

    ``mask`` shows phones as 138****8000.  ``rejects_only`` keeps just the rows rejected at import,
    with their reasons, in a shape that can be corrected and imported again.
    """
    writer = WRITERS.get(output.suffix.lower())
    if writer is None:
        raise UserError(f"{output}: the report must end in .csv, .xlsx or .html")
    table = report_table(data.frame, mask=mask)
    rows = table[table["state"].isin(data.states)] if data.states else table
    if rejects_only:
        rows = rejects_table(rows)
    summary = summarise(data, table, len(rows), scope_of(data.states, rejects_only))
    try:
        writer(rows, summary, output)
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror or exc}") from None
    return len(rows)


__all__ = ["ReportData", "StatusLike", "Summary", "WRITERS", "report_table", "write_report"]
