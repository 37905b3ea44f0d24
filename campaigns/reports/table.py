"""The recipients table: one row per input row, in input order, built column-wise.

A report builds it a chunk of rows at a time (see ``reports.rows``), so every step works on whole
columns of a chunk; the only Python loops run over distinct values (error codes, number
prefixes), never over rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from campaigns.provider.codes import describe
from campaigns.reports.carriers import carriers, provinces
from campaigns.schedule import SHANGHAI
from campaigns.store.report_queries import SOURCE_COLUMN

TIMEZONE = SHANGHAI.key
TIME_COLUMNS = {"queued_at": "queued", "sent_at": "sent", "final_at": "delivered/undelivered"}
REJECT_COLUMNS = ("reason", "error_text")  # what a rejects file adds to row, phone and the input
HEAD_COLUMNS = ("row", "phone", "carrier", "province")  # the input's own columns come next
# "file": the file a row was imported from, since row numbers of several files collide.
TAIL_COLUMNS = (
    "messageId", "state", "reason", "error_code", "error_text", "attempts", "segments",
    *TIME_COLUMNS.values(), "file",
)  # fmt: skip
OWN_COLUMNS = (*HEAD_COLUMNS, *TAIL_COLUMNS)


def input_columns(fields: pd.Series) -> pd.DataFrame:
    """The input file's own columns, from the JSON object stored per row.

    pyarrow parses all rows in one go (json.loads per row costs seconds per million).  Import stores
    every cell as text, so any column pyarrow guessed as something else (a date, say) is read again
    as text to keep exactly what the file said.
    """
    if fields.empty:
        return pd.DataFrame(index=fields.index)
    pool = pa.system_memory_pool()  # gives memory back between chunks; mimalloc's keeps it
    lines = pa.array(fields.fillna("{}"), type=pa.large_string(), memory_pool=pool)
    one_list = pa.LargeListArray.from_arrays(pa.array([0, len(lines)], pa.int64()), lines)
    newline = pa.scalar("\n", pa.large_string())
    document = pc.binary_join(one_list, newline, memory_pool=pool)[0].as_buffer()
    parsed = pa_json.read_json(pa.BufferReader(document), memory_pool=pool)
    if not all(pa.types.is_string(t) or pa.types.is_null(t) for t in parsed.schema.types):
        as_text = pa.schema([(name, pa.string()) for name in parsed.column_names])
        options = pa_json.ParseOptions(explicit_schema=as_text)
        parsed = pa_json.read_json(
            pa.BufferReader(document), parse_options=options, memory_pool=pool
        )
    table = parsed.to_pandas(memory_pool=pool).astype("str").fillna("")
    table.index = fields.index
    return table


def local_time(column: pd.Series) -> pd.Series:
    """Naive UTC from the store (datetimes, or SQLite's ISO text) → naive Asia/Shanghai
    wall-clock time, to the second."""
    stamps = pd.to_datetime(column, format="ISO8601").dt.tz_localize("UTC")
    stamps = stamps.dt.tz_convert(SHANGHAI)
    return stamps.dt.tz_localize(None).dt.floor("s")


def mask_phones(phones: pd.Series) -> pd.Series:
    """138****8000: the first 3 and last 4 characters; shorter values are hidden entirely."""
    masked = phones.str.slice(0, 3) + "****" + phones.str.slice(-4)
    return masked.where(phones.str.len() > 7, "****").where(phones != "", "")


def _error_text(frame: pd.DataFrame, codes: pd.Series) -> pd.Series:
    """The provider's meaning (English and Chinese) for a code, else what import or receipt said."""
    meanings = {code: describe(int(code)).meaning for code in codes.dropna().unique()}
    meaning = codes.map(meanings).astype("str").fillna("")
    return meaning.where(meaning != "", frame["error_text"].astype("str").fillna(""))


def _source_files(frame: pd.DataFrame) -> pd.Series:
    """The file each row was imported from ("" for rows stored before files were recorded)."""
    if SOURCE_COLUMN not in frame:
        return pd.Series("", index=frame.index, dtype="str")
    return frame[SOURCE_COLUMN].astype("str").fillna("")


def _keys_of(inputs: pd.DataFrame, raw_phone: pd.Series) -> list[tuple[str, bool]]:
    """(column, holds only the raw phone) for ``input_titles``.  Rows from another import, with
    its own phone column, hold "" there."""
    raw = raw_phone.astype("str").fillna("")
    return [
        (name, bool((column.eq(raw) | column.eq("")).all() and column.ne("").any()))
        for name, column in inputs.items()
    ]


def input_titles(keys: list[tuple[str, bool]]) -> dict[str, str]:
    """Input key → its column title, for (key, holds only the raw phone) pairs in order.

    The column(s) the phone was read from are left out: they repeat ``phone`` and would defeat
    the mask.  A name the report uses itself gets " (input)".
    """
    return {
        key: f"{key} (input)" if key in OWN_COLUMNS else key
        for key, phone_source in keys
        if not phone_source
    }


def table_columns(inputs: Mapping[str, str], *, rejects_only: bool = False) -> list[str]:
    if rejects_only:
        return ["row", "phone", *inputs.values(), *REJECT_COLUMNS]
    return [*HEAD_COLUMNS, *inputs.values(), *TAIL_COLUMNS]


def report_table(
    frame: pd.DataFrame, *, mask: bool = False, inputs: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The report's columns from the store's rows (``report_queries.ROW_COLUMNS``).

    row, phone (normalised; as typed when rejected), carrier, province, the input's own columns,
    messageId, state, reason, error_code, error_text, attempts, segments, the three times and the
    file the row was imported from.
    ``inputs`` (see ``input_titles``) fixes the input columns for every chunk of one report;
    without it they are those of ``frame`` alone.
    """
    phone = frame["phone"].astype("str")
    shown = phone.fillna(frame["raw_phone"].astype("str")).fillna("")
    codes = pd.to_numeric(frame["error_code"]).astype("Int64")
    table = pd.DataFrame(
        {
            "row": frame["row_number"],
            "phone": mask_phones(shown) if mask else shown,
            "carrier": carriers(phone),
            "province": provinces(phone),
        },
        index=frame.index,
    )
    parsed = input_columns(frame["fields"])
    if inputs is None:
        inputs = input_titles(_keys_of(parsed, frame["raw_phone"]))
    parsed = parsed.reindex(columns=list(inputs), fill_value="").rename(columns=inputs)
    outcome = pd.DataFrame(
        {
            "messageId": frame["message_id"].astype("str").fillna(""),
            "state": frame["state"].astype("str"),
            "reason": frame["reason"].astype("str").fillna(""),
            "error_code": codes,
            "error_text": _error_text(frame, codes),
            "attempts": frame["attempts"],
            "segments": frame["segments"],
            **{title: local_time(frame[column]) for column, title in TIME_COLUMNS.items()},
            "file": _source_files(frame),
        },
        index=frame.index,
    )
    return pd.concat([table, parsed, outcome], axis=1)


def rejects_table(table: pd.DataFrame) -> pd.DataFrame:
    """Rows rejected at import with why, in a shape that can be fixed and imported again."""
    rejected = table[table["state"] == "invalid"]
    inputs = [name for name in table.columns if name not in OWN_COLUMNS]
    return rejected[["row", "phone", *inputs, *REJECT_COLUMNS]]
