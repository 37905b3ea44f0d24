"""Delivery reports that people open: CSV and XLSX for operations, HTML charts for management.

    write_report(ReportData(None, status, template, campaign=StoredCampaign(engine, id)), path)

The format follows the file's extension.  Every format carries the same recipient columns (see
``table.report_table``) and the same campaign summary (see ``summary.summarise``), including
delivery by carrier and province.  Rows stream from the database a chunk at a time and the
summary is counted there, so a 5M-message campaign reports in the memory a small one does.

Only ``write_report`` is defined here; the rest loads when first used, so that `import`, which
shares the spreadsheet neutralisation (``reports.cells``), does not load openpyxl or pyarrow.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaigns.errors import UserError

if TYPE_CHECKING:
    from campaigns.reports.rows import Progress
    from campaigns.reports.summary import ReportData

WRITERS = {".csv": "csv_export", ".xlsx": "xlsx", ".html": "html", ".htm": "html"}
_LAZY = {
    "ReportData": "summary",
    "StatusLike": "summary",
    "StoredCampaign": "summary",
    "Summary": "summary",
    "report_table": "table",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)


def write_report(
    data: ReportData,
    output: Path,
    *,
    mask: bool = False,
    rejects_only: bool = False,
    on_progress: Progress | None = None,
) -> int:
    """Write the report for ``data`` to ``output`` (.csv, .xlsx or .html); returns the number of
    recipient rows it covers.

    ``mask`` shows phones as 138****8000.  ``rejects_only`` keeps just the rows rejected at import,
    with their reasons, in a shape that can be corrected and imported again.  ``on_progress``
    hears (rows written, rows in the file) after every chunk.
    """
    module = WRITERS.get(output.suffix.lower())
    if module is None:
        raise UserError(f"{output}: the report must end in .csv, .xlsx or .html")
    if not output.parent.is_dir():
        raise UserError(f"cannot write {output}: the folder {output.parent} does not exist")
    from campaigns.reports.rows import Rows, chosen_states, scratch_campaign
    from campaigns.reports.summary import scope_of, summarise
    from campaigns.store.report_queries import snapshot

    writer = importlib.import_module(f"{__name__}.{module}").write
    if data.campaign is not None:
        engine, campaign_id = data.campaign.engine, data.campaign.campaign_id
    elif data.frame is not None:
        engine, campaign_id = scratch_campaign(data.frame)
    else:
        raise ValueError("ReportData needs a stored campaign or a frame of rows")
    try:
        with snapshot(engine) as connection:
            states = chosen_states(data.states, rejects_only)
            rows = Rows(connection, campaign_id, states, rejects_only, mask, on_progress)
            scope = scope_of(data.states, rejects_only)
            writer(rows, summarise(data, connection, campaign_id, rows.count, scope), output)
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        if data.campaign is None:
            engine.dispose()
    return rows.count


__all__ = ["WRITERS", "write_report", *_LAZY]
