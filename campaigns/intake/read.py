"""Read a recipients spreadsheet (CSV/TXT/TSV, XLSX, XLS or ODS) as the user sees it in Excel,
in chunks.

Every cell stays text, so phone numbers and order ids are never turned into floats, and each
data row keeps the row number Excel shows.  The rows come a chunk of cells at a time (pyarrow's
streaming CSV reader; workbooks through ``spreadsheets.py``), so memory stays flat however long
or wide the file is, and every format is held to the limits of ``limits.py``.  Every failure is
one InputFileError line naming the file, because the people reading it are operations staff,
not programmers.
"""

from __future__ import annotations

import shlex
import stat
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from campaigns.errors import InputFileError, UserError
from campaigns.intake.delimited import Grid, text_grids
from campaigns.intake.limits import check_width, chunk_rows
from campaigns.intake.spreadsheets import cell_text, open_sheet

PHONE_HEADERS = (
    "phone",
    "mobile",
    "number",
    "tel",
    "手机",
    "手机号",
    "手机号码",
    "电话",
    "联系电话",
    "号码",
)
# Failing an exact header, one that contains one of these: 联系手机, 客户电话, "Mobile Phone".
PHONE_WORDS = ("手机", "电话", "phone", "mobile")
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")

_EMPTY_HEADER = "{name}: row 1 is empty; put the column names in row 1"
_COLUMNS_SHOWN = 20  # columns a message lists


@dataclass
class Chunk:
    """Consecutive data rows of the file, all text, and where each row came from."""

    frame: pd.DataFrame  # every cell a str ("" when blank), the file's header names
    row_numbers: np.ndarray  # Excel's row number of each frame row (the header is row 1)


@dataclass
class Recipients:
    """An opened recipients file: its header and phone column now, its rows as they are read."""

    columns: list[str]  # header names, made unique ("column N" for a blank one)
    phone_column: str  # the header of the column holding phone numbers
    source: str  # the file name
    where: str  # the file name, and the sheet of a workbook: how messages name the file
    chunks: Generator[
        Chunk, None, None
    ]  # one pass; raises InputFileError at a bad row or if no row has data


def read_recipients(
    path: str | Path,
    *,
    phone_column: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
) -> Recipients:
    """Open ``path``, read its header and find its phone column (``phone_column``, else the one
    header PHONE_HEADERS names), so that a wrong file fails before anything is stored.

    ``encoding`` forces a text encoding (default: UTF-8, then GB18030/GBK); ``sheet`` picks a
    workbook's sheet (default: the first).  Fully blank rows are dropped; the others keep their
    row numbers.
    """
    path = Path(path)
    name = path.name
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        if sheet is not None:
            raise UserError(f"{name}: a sheet can only be chosen in a workbook (.xlsx, .xls, .ods)")
        _check_regular_file(path)
        grids = text_grids(path, name, suffix, encoding)
    elif suffix in WORKBOOK_SUFFIXES:
        if encoding is not None:
            raise UserError(f"{name}: an encoding can only be chosen for CSV or text files")
        _check_regular_file(path)
        grids = _workbook_grids(path, name, sheet)
    else:
        raise InputFileError(
            f"{name}: unsupported file type {suffix or '(no extension)'};"
            " use .csv, .txt, .tsv, .xlsx, .xls or .ods"
        )
    header, where = next(grids)  # the generators open the file and yield its header first
    try:
        if not any(cell.strip() for cell in header):
            raise InputFileError(_EMPTY_HEADER.format(name=where))
        columns = _unique([cell.strip() for cell in header])
        phone = _phone_column(columns, phone_column, where)
    except InputFileError:
        grids.close()
        raise
    return Recipients(columns, phone, name, where, _chunks(grids, columns, where))


def _chunks(grids: Iterator[Grid], columns: list[str], where: str) -> Generator[Chunk, None, None]:
    """Name the columns and drop blank rows; a file whose rows are all blank is an error.

    Before each chunk, pyarrow's pool gives the memory the last one used back to the system:
    otherwise it keeps it, and the process grows with the file.
    """
    rows = 0
    for grid, numbers in grids:
        pa.default_memory_pool().release_unused()
        grid.columns = columns
        keep = (grid != "").any(axis=1).to_numpy()
        if not keep.all():
            grid, numbers = grid[keep].reset_index(drop=True), numbers[keep]
        if len(grid):
            rows += len(grid)
            yield Chunk(grid, numbers)
    if not rows:
        raise InputFileError(f"{where}: there are no data rows under the header row")


def _check_regular_file(path: Path) -> None:
    """Refuse a folder, a pipe, a device or a socket before opening it: reading a pipe (FIFO)
    waits for a writer that may never come."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputFileError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputFileError(f"{path.name}: cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise InputFileError(f"{path.name}: is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise InputFileError(
            f"{path.name}: is not a regular file (a pipe, device or socket);"
            " save the list to a file and import that"
        )


# -- workbooks ----


def _workbook_grids(
    path: Path, name: str, sheet: str | None
) -> Generator[Any, None, None]:  # the header row and "file (sheet)", then Grid chunks
    where, rows = open_sheet(path, name, sheet)
    try:
        header = [cell_text(value, where) for value in next(rows, ())]
        if not header:
            raise InputFileError(f"{where}: the sheet is empty")
        check_width(len(header), where)
        yield header, where
        size, cells, numbers = chunk_rows(len(header)), [], []
        for number, row in enumerate(rows, start=2):
            if any(value is not None and value != "" for value in row):  # else a blank row
                cells.append(_cells(row, len(header), number, where))
                numbers.append(number)
            if len(cells) == size:
                yield _grid(cells, len(header), numbers)
                cells, numbers = [], []
        yield _grid(cells, len(header), numbers)
    except InputFileError:
        raise
    except Exception as exc:  # damage further into the file surfaces while its rows are read
        raise InputFileError(f"{name}: the workbook is damaged ({type(exc).__name__})") from None
    finally:
        rows.close()


def _grid(cells: list[list[str]], width: int, numbers: list[int]) -> Grid:
    return pd.DataFrame(cells, columns=range(width), dtype="str"), np.array(numbers, np.int64)


def _cells(row: list, width: int, number: int, where: str) -> list[str]:
    """A row's cells as text, padded to the header's width; values beyond it are an error."""
    texts = [cell_text(value, where) for value in row]
    if any(text.strip() for text in texts[width:]):
        raise InputFileError(
            f"{where}: row {number} has values beyond the last header column;"
            " give those columns a header in row 1"
        )
    return texts[:width] + [""] * (width - len(texts))


# -- the header ----


def _unique(header: list[str]) -> list[str]:
    """Header names usable as keys: blanks become "column N", repeats get ".1", ".2" like pandas."""
    names: list[str] = []
    for position, title in enumerate(header, start=1):
        base = title or f"column {position}"
        candidate, repeat = base, 0
        while candidate in names:
            repeat += 1
            candidate = f"{base}.{repeat}"
        names.append(candidate)
    return names


def _phone_column(columns: list[str], wanted: str | None, where: str) -> str:
    """The requested column, else the single known phone header, else the single header holding
    a phone word.

    When there is no single one, the message gives the ``--phone-column`` option to type.
    """
    found = listed_columns(columns)
    if wanted is not None:
        exact = [c for c in columns if c == wanted]
        matches = exact or [c for c in columns if _key(c) == _key(wanted)]
        if len(matches) != 1:
            raise InputFileError(f"{where}: no column named {wanted!r}; columns: {found}")
        return matches[0]
    known = {_key(h) for h in PHONE_HEADERS}
    matches = [c for c in columns if _key(c) in known] or [
        c for c in columns if any(word in _key(c) for word in PHONE_WORDS)
    ]
    if len(matches) == 1:
        return matches[0]
    if matches:
        options = " or ".join(phone_column_option(c) for c in matches)
        raise InputFileError(
            f"{where}: several columns look like phone numbers ({', '.join(matches)});"
            f" choose one with {options}"
        )
    raise InputFileError(
        f"{where}: no phone column found; columns: {found};"
        ' name it with --phone-column "HEADER" (that column\'s header, as in row 1)'
    )


def phone_column_option(header: str) -> str:
    """The command-line option that picks ``header`` as the phone column, quoted for a shell."""
    return (
        f"--phone-column {shlex.quote(header)}" if '"' in header else f'--phone-column "{header}"'
    )


def listed_columns(columns: Sequence[str]) -> str:
    """The columns for a one-line message: the first few of a wide file, and how many."""
    shown = ", ".join(columns[:_COLUMNS_SHOWN])
    more = len(columns) - _COLUMNS_SHOWN
    return f"{shown}, ... ({len(columns):,} columns)" if more > 0 else shown


def _key(header: str) -> str:
    """Header compared without case or spaces, so "Phone " and "phone" match."""
    return "".join(header.split()).lower()
