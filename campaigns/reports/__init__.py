"""Delivery reports: one row per recipient, in input order, that people open in Excel."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from campaigns.errors import UserError
from campaigns.provider.codes import describe

TIMEZONE = "Asia/Shanghai"
TIME_COLUMNS = {"queued_at": "queued", "sent_at": "sent", "final_at": "delivered/undelivered"}


def _local_time(column: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(column).dt.tz_localize("UTC").dt.tz_convert(TIMEZONE)
    return stamps.dt.strftime("%Y-%m-%d %H:%M:%S").fillna("")


def _error_text(frame: pd.DataFrame) -> pd.Series:
    """The provider's meaning (with its Chinese text) for a code, else what import said."""
    meaning = frame["error_code"].map(
        lambda code: describe(int(code)).meaning if pd.notna(code) else ""
    )
    return meaning.where(meaning != "", frame["error_text"].fillna(""))


def report_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The report's columns from the store's rows (see ``queries.report_frame``)."""
    input_columns = pd.json_normalize(frame["fields"].map(json.loads).tolist())
    table = pd.DataFrame(
        {
            "row": frame["row_number"],
            "phone": frame["phone"].fillna(frame["raw_phone"]),
            "messageId": frame["message_id"].fillna(""),
            "state": frame["state"],
            "reason": frame["reason"].fillna(""),
            "error_code": frame["error_code"].astype("Int64"),
            "error_text": _error_text(frame),
            "attempts": frame["attempts"],
            "segments": frame["segments"],
        }
    )
    for column, title in TIME_COLUMNS.items():
        table[title] = _local_time(frame[column])
    input_columns.index = table.index
    extra = input_columns.drop(columns=[c for c in input_columns if c in table], errors="ignore")
    return pd.concat([table.iloc[:, :2], extra, table.iloc[:, 2:]], axis=1)


def write_report(frame: pd.DataFrame, output: Path) -> int:
    suffix = output.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise UserError(f"{output}: the report must end in .csv or .xlsx")
    table = report_table(frame)
    try:
        if suffix == ".csv":
            # The BOM makes Excel on Windows read the file as UTF-8 (Chinese intact).
            table.to_csv(output, index=False, encoding="utf-8-sig")
        else:
            table.astype({"phone": str, "messageId": str}).to_excel(
                output, index=False, sheet_name="Recipients", engine="openpyxl"
            )
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror}") from None
    return len(table)
