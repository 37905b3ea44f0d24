"""Read a workbook (.xlsx, .xlsm, .xls from old Excel and WPS, .ods) a row at a time, as text.

calamine reads a sheet about ten times faster than openpyxl's read-only mode (``python -m
bench.read_xlsx``) and reads .xls and .ods too, but it holds the whole sheet in memory, one
32-byte slot per cell from the sheet's first cell to its last.  So a zipped workbook is first
checked part by part (``archive.py``) and an .xls measured from its cell records
(``oldexcel.py``): a sheet of up to MAX_LOADED_CELLS cells is read by calamine; a larger .xlsx
(or one unpacking to more than WHOLE_READ_BYTES) is streamed by openpyxl, whose memory stays
flat; a larger .ods or .xls is refused.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from campaigns.errors import InputFileError
from campaigns.intake.archive import WorkbookScan, scan_workbook
from campaigns.intake.limits import MAX_CELL_CHARS, MAX_LOADED_CELLS, over_limit
from campaigns.intake.oldexcel import largest_span

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old .xls, and password-protected .xlsx
_ENCRYPTED_STREAM = "EncryptionInfo".encode("utf-16-le")
# calamine keeps every text too (each cell its own copy): an .xlsx unpacking to more is streamed.
# A full 1,048,576-row sheet of three columns unpacks to 182 MB and peaks at 420 MB in calamine.
WHOLE_READ_BYTES = 256 << 20

Rows = Generator[list[Any], None, None]  # a sheet's rows from row 1, each from column A


def file_head(path: Path, size: int) -> bytes:
    """The file's first bytes; a missing or unreadable file is the user's to fix."""
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except FileNotFoundError:  # gone since it was checked
        raise InputFileError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputFileError(f"{path.name}: cannot be read ({exc.strerror})") from None


def open_sheet(path: Path, name: str, sheet: str | None) -> tuple[str, Rows]:
    """("file (sheet NAME)", the sheet's rows) for sheet ``sheet``, else the first one.

    The rows come from a generator that holds the workbook open until it is closed or done.
    """
    head = file_head(path, len(OLE_MAGIC))
    if not head.strip(b"\x00 \t\r\n"):
        raise InputFileError(f"{name}: the file is empty")
    if head == OLE_MAGIC:
        data = path.read_bytes()  # calamine reads an .xls whole too
        if _ENCRYPTED_STREAM in data:
            raise InputFileError(
                f"{name}: the workbook is encrypted (password-protected);"
                " remove the password in Excel and save it again"
            )
        if (span := largest_span(data)) > MAX_LOADED_CELLS:
            raise _too_many_cells(name, span)
        return _calamine_sheet(path, name, sheet)
    if not head.startswith(ZIP_MAGIC):
        raise InputFileError(
            f"{name}: not a workbook (.xlsx, .xls or .ods); save it again from Excel as .xlsx"
        )
    scan = scan_workbook(path, name)
    small = scan.opendocument or scan.unpacked <= WHOLE_READ_BYTES
    if scan.largest <= MAX_LOADED_CELLS and small:
        return _calamine_sheet(path, name, sheet)
    if scan.opendocument:
        raise _too_many_cells(name, scan.largest)
    return _openpyxl_sheet(path, name, sheet, scan)


def cell_text(value: object, where: str) -> str:
    """A cell as Excel shows it unformatted; whole numbers without ".0" (a phone typed as a
    number comes back as 13800138000.0); refused past MAX_CELL_CHARS."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    if len(text) > MAX_CELL_CHARS:
        raise over_limit(
            where,
            f"a cell holds {len(text):,} characters",
            "cell length",
            MAX_CELL_CHARS,
            "characters",
        )
    return text


def _calamine_sheet(path: Path, name: str, wanted: str | None) -> tuple[str, Rows]:
    import python_calamine  # here, not at the top: CSV imports do without it

    try:
        with path.open("rb") as handle:
            book = python_calamine.CalamineWorkbook.from_filelike(handle)
    except python_calamine.CalamineError as exc:
        raise _damaged(name, exc) from None
    try:
        target = _sheet_name(book.sheet_names, wanted, name)
        sheet = book.get_sheet_by_name(target)
    except python_calamine.CalamineError as exc:
        book.close()
        raise _damaged(name, exc) from None
    except InputFileError:
        book.close()
        raise
    return f"{name} (sheet {target})", _calamine_rows(book, sheet)


def _calamine_rows(book: Any, sheet: Any) -> Rows:
    """The rows from row 1; calamine starts each at the first column that holds a value."""
    left = [""] * (sheet.start[1] if sheet.start else 0)
    try:
        for row in sheet.iter_rows():
            yield left + row
    finally:
        book.close()


def _openpyxl_sheet(
    path: Path, name: str, wanted: str | None, scan: WorkbookScan
) -> tuple[str, Rows]:
    import openpyxl  # here, not at the top: a third of a second that CSV imports do without

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl reports damage with many exception types
        raise _damaged(name, exc) from None
    try:
        sheet = book[_sheet_name(book.sheetnames, wanted, name)]
    except InputFileError:
        book.close()
        raise
    # The sheet's declared dimension may be wrong (and openpyxl would stop at it): the scan
    # knows how wide the sheet really is.
    _, width, _ = scan.shapes.get(sheet._worksheet_path.lstrip("/"), (0, 0, 0))
    sheet.reset_dimensions()
    return f"{name} (sheet {sheet.title})", _openpyxl_rows(book, sheet, width)


def _openpyxl_rows(book: Any, sheet: Any, width: int) -> Rows:
    """The rows from row 1, the header padded to the widest row as calamine pads it."""
    try:
        for number, row in enumerate(sheet.iter_rows(values_only=True)):
            cells = list(row)
            yield cells + [None] * (width - len(cells)) if number == 0 else cells
    finally:
        book.close()


def _sheet_name(names: list[str], wanted: str | None, name: str) -> str:
    """The requested sheet, or the first one."""
    if not names:
        raise InputFileError(f"{name}: the workbook has no sheets")
    if wanted is None:
        return names[0]
    if wanted not in names:
        raise InputFileError(f"{name}: no sheet named {wanted!r}; sheets: {', '.join(names)}")
    return wanted


def _too_many_cells(where: str, cells: int) -> InputFileError:
    return over_limit(
        where,
        f"a sheet spans {cells:,} cells",
        "cells of a .xls or .ods sheet",
        MAX_LOADED_CELLS,
        "cells",
    )


def _damaged(name: str, exc: BaseException) -> InputFileError:
    reason = (str(exc).splitlines() or [""])[0] or type(exc).__name__
    return InputFileError(f"{name}: the workbook is damaged ({reason})")
