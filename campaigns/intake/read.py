"""Read a recipients spreadsheet (CSV/TXT/TSV or XLSX) as the user sees it in Excel.

Every cell stays text, so phone numbers and order ids are never turned into floats, and each
data row keeps the row number Excel shows.  Every failure is one InputFileError line naming the
file, because the people reading it are operations staff, not programmers.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from campaigns.errors import InputFileError, UserError

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
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
XLSX_SUFFIXES = (".xlsx", ".xlsm")

_GUESSED_ENCODINGS = ("utf-8-sig", "gb18030")  # gb18030 is a superset of GBK and GB2312
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # Excel's "Unicode Text" export
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old .xls, and password-protected .xlsx
_ENCRYPTED_STREAM = "EncryptionInfo".encode("utf-16-le")
_OLD_XLS = "this is an old .xls workbook; open it in Excel and save it as .xlsx or CSV"
_EMPTY_HEADER = "{name}: row 1 is empty; put the column names in row 1"
_SNIFF_CHARS = 8192
_DELIMITERS = ",;\t"
_CSV_OPTIONS = {"header": None, "dtype": str, "keep_default_na": False, "skip_blank_lines": False}


@dataclass
class Recipients:
    """The data rows of one sheet, all text, and where each row came from."""

    frame: pd.DataFrame  # every cell a str ("" when blank), original header names
    phone_column: str  # the header of the column holding phone numbers
    row_numbers: np.ndarray  # Excel's row number of each frame row (header is row 1)
    source: str  # the file name, for messages


def read_recipients(
    path: str | Path,
    *,
    phone_column: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
) -> Recipients:
    """Read ``path`` and find its phone column (``phone_column``, else the one PHONE_HEADERS name).

    ``encoding`` forces a text encoding (default: UTF-8, then GB18030/GBK); ``sheet`` picks an XLSX
    sheet (default: the first).  Fully blank rows are dropped; the others keep their row numbers.
    """
    path = Path(path)
    name = path.name
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise InputFileError(f"{name}: {_OLD_XLS}")
    if suffix in TEXT_SUFFIXES:
        if sheet is not None:
            raise UserError(f"{name}: a sheet can only be chosen in an .xlsx workbook")
        grid, where = _read_text(_load(path), name, suffix, encoding), name
    elif suffix in XLSX_SUFFIXES:
        if encoding is not None:
            raise UserError(f"{name}: an encoding can only be chosen for CSV or text files")
        grid, where = _read_xlsx(_load(path), name, sheet)
    else:
        raise InputFileError(
            f"{name}: unsupported file type {suffix or '(no extension)'};"
            " use .csv, .txt, .tsv or .xlsx"
        )
    frame, row_numbers = _split_header(grid, where)
    return Recipients(frame, _phone_column(frame.columns, phone_column, where), row_numbers, name)


def _load(path: Path) -> bytes:
    """The file's bytes; a missing, unreadable or empty file is the user's to fix."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputFileError(f"{path.name}: is a folder, not a file") from None
    except OSError as exc:
        raise InputFileError(f"{path.name}: cannot be read ({exc.strerror})") from None
    if not data.strip():
        raise InputFileError(f"{path.name}: the file is empty")
    return data


def _read_text(data: bytes, name: str, suffix: str, encoding: str | None) -> pd.DataFrame:
    """All rows of a delimited text file, header included, as strings."""
    text = _decode(data, name, encoding)
    if not text.strip():
        raise InputFileError(f"{name}: the file is empty")
    delimiter = "\t" if suffix == ".tsv" else _sniff(text)
    try:
        utf8 = io.BytesIO(text.encode("utf-8"))
        return pd.read_csv(utf8, sep=delimiter, engine="pyarrow", **_CSV_OPTIONS)
    except ValueError:  # pyarrow refuses rows of unequal length: pad them or name the bad row
        return _read_ragged(text, delimiter, name)


def _read_ragged(text: str, delimiter: str, name: str) -> pd.DataFrame:
    """Rows cut or padded to the header's width; only a row with extra non-empty cells is wrong."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise InputFileError(f"{name}: cannot be read as CSV ({exc})") from None
    width = len(rows[0])
    if not width:
        raise InputFileError(_EMPTY_HEADER.format(name=name))
    for number, row in enumerate(rows, start=1):
        if any(cell.strip() for cell in row[width:]):
            raise InputFileError(
                f"{name}: row {number} has {len(row)} cells but the header row has {width};"
                f" look for a stray {delimiter!r} or quote in that row"
            )
    return pd.DataFrame([row[:width] + [""] * (width - len(row)) for row in rows], dtype="str")


def _decode(data: bytes, name: str, encoding: str | None) -> str:
    """Text in the forced encoding, else the first of UTF-8 / GB18030 that decodes cleanly."""
    if data.startswith(_ZIP_MAGIC):
        raise InputFileError(f"{name}: this is an Excel workbook, not text; rename it to .xlsx")
    if encoding:
        candidates: tuple[str, ...] = (encoding,)
    else:
        candidates = ("utf-16",) if data.startswith(_UTF16_BOMS) else _GUESSED_ENCODINGS
    for candidate in candidates:
        try:
            text = data.decode(candidate)
        except LookupError:
            raise InputFileError(f"{name}: unknown encoding {candidate!r}") from None
        except UnicodeDecodeError as exc:
            _reject_damaged_utf8(data, exc, name, guessing=not encoding)
            continue
        if "\x00" not in text:  # binary files decode as GB18030 more often than not
            return text
    wanted = f"{encoding} text" if encoding else "text (UTF-8 or GBK)"
    raise InputFileError(f"{name}: not a spreadsheet: it is not {wanted}; save it as CSV or .xlsx")


def _reject_damaged_utf8(data: bytes, exc: UnicodeDecodeError, name: str, guessing: bool) -> None:
    """Stop when a UTF-8 file has one bad byte: read as GBK it would turn into silent mojibake."""
    before = data[: exc.start].removeprefix(codecs.BOM_UTF8)
    if guessing and exc.encoding == "utf-8" and not before.isascii():
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputFileError(
            f"{name}: line {line} is not valid UTF-8 although the lines before it are;"
            " fix that line or give the encoding explicitly"
        )


def _sniff(text: str) -> str:
    """The delimiter among , ; and tab, judged on the first few KB; comma when unclear."""
    sample = text[:_SNIFF_CHARS]
    sample = sample[: sample.rfind("\n") + 1] or sample
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return ","


def _read_xlsx(data: bytes, name: str, sheet: str | None) -> tuple[pd.DataFrame, str]:
    """All rows of one sheet, header included, as strings; and "file (sheet)" for messages."""
    if data.startswith(_OLE_MAGIC):
        if _ENCRYPTED_STREAM in data:
            raise InputFileError(
                f"{name}: the workbook is encrypted (password-protected);"
                " remove the password in Excel and save it again"
            )
        raise InputFileError(f"{name}: {_OLD_XLS}")
    if not data.startswith(_ZIP_MAGIC):
        raise InputFileError(f"{name}: not an .xlsx workbook; save it again from Excel as .xlsx")
    try:
        with pd.ExcelFile(io.BytesIO(data), engine="openpyxl") as book:
            target = _sheet_name(book.sheet_names, sheet, name)
            grid = pd.read_excel(book, sheet_name=target, header=None, dtype=str)
    except InputFileError:
        raise
    except Exception as exc:  # openpyxl reports damage with many exception types
        raise InputFileError(f"{name}: the workbook is damaged ({type(exc).__name__})") from None
    where = f"{name} (sheet {target})"
    if grid.empty:
        raise InputFileError(f"{where}: the sheet is empty")
    return grid, where


def _sheet_name(names: list[str], wanted: str | None, name: str) -> str:
    """The requested sheet, or the first one."""
    if wanted is None:
        return names[0]
    if wanted not in names:
        raise InputFileError(f"{name}: no sheet named {wanted!r}; sheets: {', '.join(names)}")
    return wanted


def _split_header(grid: pd.DataFrame, where: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Row 1 becomes the header; blank rows go, the rest keep their Excel row numbers."""
    grid = grid.astype("str").fillna("")
    header = grid.iloc[0].str.strip().tolist()
    if not any(header):
        raise InputFileError(_EMPTY_HEADER.format(name=where))
    body = grid.iloc[1:]
    body = body[(body != "").any(axis=1)]
    if body.empty:
        raise InputFileError(f"{where}: there are no data rows under the header row")
    row_numbers = body.index.to_numpy() + 1  # grid index 0 is Excel row 1
    frame = body.set_axis(_unique(header), axis=1).reset_index(drop=True)
    return frame, row_numbers


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


def _phone_column(columns: pd.Index, wanted: str | None, where: str) -> str:
    """The requested column, else the single header that is a known phone header."""
    found = ", ".join(columns)
    if wanted is not None:
        exact = [c for c in columns if c == wanted]
        matches = exact or [c for c in columns if _key(c) == _key(wanted)]
        if len(matches) != 1:
            raise InputFileError(f"{where}: no column named {wanted!r}; columns: {found}")
        return matches[0]
    known = {_key(h) for h in PHONE_HEADERS}
    matches = [c for c in columns if _key(c) in known]
    if len(matches) == 1:
        return matches[0]
    problem = "several columns look like phone numbers" if matches else "no phone column found"
    raise InputFileError(f"{where}: {problem}; columns: {found}; name the phone column to use")


def _key(header: str) -> str:
    """Header compared without case or spaces, so "Phone " and "phone" match."""
    return "".join(header.split()).lower()
