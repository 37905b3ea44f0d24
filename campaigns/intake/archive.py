"""Inspect a zipped workbook (.xlsx, .xlsm, .ods) before any spreadsheet parser opens it.

Parsers trust the archive: a 0.8 MB file can unpack to 800 MB of one cell, and calamine sizes
its grid from the cell references, so two cells at A1 and FAN1048576 ask for 4 billion cells.
So every part is unpacked here first, as a stream, counting what it really holds: the sizes
the archive declares are checked up front, then again byte by byte, because declarations lie.
Each XML part is scanned for its longest text, its rows, its widest row and its shared
strings.  Anything past a limit (``limits.py``) is refused in one line; what is left is the
largest grid a sheet spans, which tells the caller whether the sheet may be read whole.
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from campaigns.errors import InputFileError
from campaigns.intake.limits import (
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_COMPRESSION_RATIO,
    MAX_PARTS,
    MAX_SHARED_STRINGS,
    MAX_SHEET_ROWS,
    MAX_UNCOMPRESSED_BYTES,
    MAX_XML_TEXT_BYTES,
    RATIO_FLOOR_BYTES,
    over_limit,
)

READ_BYTES = 1 << 20  # unpacked at a time
_PREFIX = rb"<(?:[A-Za-z_][\w.-]*:)?"  # any namespace prefix: x:c is a cell as much as c
# SpreadsheetML: rows, cells (with their reference, A1 style) and shared strings.
# A reference: letters (calamine takes lower case too), digits, and anything else, which is damage.
_XLSX_TAG = re.compile(
    _PREFIX + rb"(row|c|si|sst)(?=[\s/>])(?:[^>]*?\sr\s*=\s*[\"']([A-Za-z]*)([0-9]*)([^\"']*))?"
)
# OpenDocument: sheets, rows and cells, with the attributes that repeat them.
_ODS_TAG = re.compile(
    _PREFIX + rb"(table|table-row|table-cell|covered-table-cell)(?=[\s/>])([^>]*)>"
)
_TAIL_BYTES = 22 + 0xFFFF + 56 + 20  # end record, longest comment, zip64 end record and locator
_END_RECORD = b"PK\x05\x06"
_ZIP64_END_RECORD = b"PK\x06\x06"
_DECLARED_COUNT = re.compile(rb"uniqueCount\s*=\s*[\"']([^\"']*)")  # not count: references
_REPEATED = re.compile(rb"number-(?:rows|columns)-repeated\s*=\s*[\"']([^\"']*)")
_DAMAGED = "the workbook is damaged ({reason}); save it again from the program that made it"


@dataclass
class _Grid:
    """Where the cells of one sheet part reach: the last row and the widest row."""

    rows: int = 0
    columns: int = 0
    cells: int = 0  # cell elements: a sparse parser keeps each, even two at the same place
    row: int = 0  # the row being read
    column: int = 0  # the last column of the row being read
    row_cells: int = 0  # cell elements of the row being read
    row_elements: int = 0
    shared_strings: int = 0


@dataclass
class WorkbookScan:
    """What the archive holds once checked: each XML part's (rows, columns, cell elements), as
    a parser that reads a sheet whole lays its cells out, and whether it is an OpenDocument
    file (.ods)."""

    shapes: dict[str, tuple[int, int, int]]
    opendocument: bool
    unpacked: int  # bytes of all parts, unpacked

    @property
    def largest(self) -> int:
        """The most cells a parser holding a part whole would keep."""
        return max((max(r * c, cells) for r, c, cells in self.shapes.values()), default=0)


def scan_workbook(path: Path, where: str) -> WorkbookScan:
    """Check the archive at ``path`` against the limits, part by part, as a stream."""
    _check_part_count(path, where)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            _check_declared(members, path.stat().st_size, where)
            ods = "mimetype" in {member.filename for member in members}
            unpacked, shapes = 0, {}
            for member in members:
                scan = _OdsScan(where) if ods else _XlsxScan(where)
                unpacked = _unpack(archive, member, unpacked, scan.feed, where)
                shapes[member.filename] = (scan.grid.rows, scan.grid.columns, scan.grid.cells)
            return WorkbookScan(shapes, ods, unpacked)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise InputFileError(f"{where}: {_DAMAGED.format(reason=_first_line(exc))}") from None
    # zipfile raises NotImplementedError for a compression method it lacks, RuntimeError for an
    # encrypted part: either way the workbook cannot be read, and the user is told so.
    except (NotImplementedError, RuntimeError) as exc:
        raise InputFileError(f"{where}: cannot be unpacked ({_first_line(exc)})") from None


def _check_part_count(path: Path, where: str) -> None:
    """Refuse an archive listing more than MAX_PARTS parts before its directory is read: a
    100 MB directory of a million tiny parts takes half a GB as zipfile's objects.

    The count is in the end-of-directory record, within the file's last 64 KB (its comment
    comes after it); zip64 archives keep it in a record of their own just before.
    """
    with path.open("rb") as handle:
        handle.seek(max(path.stat().st_size - _TAIL_BYTES, 0))
        tail = handle.read()
    end = tail.rfind(_END_RECORD)
    if end == -1 or end + 22 > len(tail):
        return  # not found: zipfile says so, as damage
    (parts,) = struct.unpack_from("<H", tail, end + 10)
    zip64 = tail.rfind(_ZIP64_END_RECORD, 0, end)
    if parts == 0xFFFF and zip64 != -1 and zip64 + 40 <= len(tail):
        (parts,) = struct.unpack_from("<Q", tail, zip64 + 32)
    if parts > MAX_PARTS:
        raise over_limit(where, f"the archive lists {parts:,} parts", "parts", MAX_PARTS, "parts")


def _check_declared(members: list[zipfile.ZipInfo], file_size: int, where: str) -> None:
    """What the archive says it holds, refused before anything is unpacked."""
    names = [member.filename for member in members]
    if len(set(names)) != len(names):
        raise InputFileError(f"{where}: {_DAMAGED.format(reason='a part appears twice')}")
    declared = sum(member.file_size for member in members)
    if declared > MAX_UNCOMPRESSED_BYTES:
        raise _too_big(where, f"its parts declare {declared:,} bytes unpacked")
    for member in members:
        packed = min(max(member.compress_size, 1), file_size)
        if (
            member.file_size > RATIO_FLOOR_BYTES
            and member.file_size > packed * MAX_COMPRESSION_RATIO
        ):
            raise _too_dense(where, member.filename, member.file_size // packed)


def _unpack(
    archive: zipfile.ZipFile,
    member: zipfile.ZipInfo,
    unpacked: int,
    feed: Callable[[bytes], None] | None,
    where: str,
) -> int:
    """Unpack one part as a stream, counting its real bytes (zipfile checks them against the
    declared size and CRC at the end), and ``feed`` it if it is XML, whatever its name says;
    return the archive's running total."""
    packed = max(member.compress_size, 1)
    seen = 0
    with archive.open(member) as stream:
        while block := stream.read(READ_BYTES):
            if not seen and not block.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
                feed = None  # a picture, a font, a macro: binary, which no parser reads as XML
            seen += len(block)
            unpacked += len(block)
            if unpacked > MAX_UNCOMPRESSED_BYTES:
                raise _too_big(where, f"its parts unpack to more than {unpacked:,} bytes")
            if seen > RATIO_FLOOR_BYTES and seen > packed * MAX_COMPRESSION_RATIO:
                raise _too_dense(where, member.filename, seen // packed)
            if feed is not None:
                feed(block)
    return unpacked


class _XmlScan(ABC):
    """The longest run of text between two tags, over a part fed in blocks, and the tags."""

    pattern: re.Pattern[bytes]

    def __init__(self, where: str) -> None:
        self.where = where
        self.grid = _Grid()
        self.tail = b""  # the bytes after the last "<" of the blocks so far: an unfinished tag

    def feed(self, block: bytes) -> None:
        data = self.tail + block
        opens = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("<"))
        gaps = np.diff(opens, prepend=0, append=len(data))
        if gaps.max(initial=0) > MAX_XML_TEXT_BYTES:
            raise over_limit(
                self.where,
                f"a cell or value holds more than {MAX_XML_TEXT_BYTES:,} bytes of text",
                "cell length",
                MAX_CELL_CHARS,
                "characters",
            )
        if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
            # Entities expand as a "billion laughs" bomb; no spreadsheet program writes them.
            raise self.damaged("it declares XML entities")
        cut = int(opens[-1]) if len(opens) else 0
        self.tail = data[cut:]
        for match in self.pattern.finditer(data, 0, cut):
            self.tag(match)

    @abstractmethod
    def tag(self, match: re.Match[bytes]) -> None:
        """One tag the format's pattern found: what it says about the grid."""

    def cell_at(self, column: int, row: int | None = None) -> None:
        """A cell in ``column`` of ``row`` (default: the current row): the grid reaches it."""
        grid = self.grid
        row = grid.row if row is None else row
        if column > MAX_COLUMNS:
            raise _too_wide(self.where, f"a row reaches column {column:,}")
        if row > MAX_SHEET_ROWS:
            raise _too_long(self.where, f"a sheet reaches row {row:,}")
        grid.column = column
        grid.columns = max(grid.columns, column)
        grid.rows = max(grid.rows, row)

    def number(self, value: bytes) -> int:
        if not value.isdigit():
            raise self.damaged(f"a repeat count {value.decode(errors='replace')!r}")
        return _integer(value)

    def damaged(self, what: str) -> InputFileError:
        """Damage the parser might read otherwise than this scan (an entity, a sign): refused."""
        return InputFileError(f"{self.where}: {_DAMAGED.format(reason=what)}")

    def row_at(self, row: int) -> None:
        self.grid.row, self.grid.column, self.grid.row_cells = row, 0, 0


class _XlsxScan(_XmlScan):
    """Rows and cells as SpreadsheetML places them: by their reference, else one after the
    previous one; and the shared strings."""

    pattern = _XLSX_TAG

    def tag(self, match: re.Match[bytes]) -> None:
        name, letters, digits, rest = match.groups()
        if rest:
            raise self.damaged(f"a cell reference ending {rest.decode(errors='replace')!r}")
        grid = self.grid
        if name == b"c":
            # A cell's own reference places it, whatever row it is written in.
            column = _column_number(letters) if letters else grid.column + 1
            self.cell_at(column, _integer(digits) if digits else None)
            grid.cells += 1
            grid.row_cells += 1
            if grid.row_cells > MAX_COLUMNS:
                raise _too_wide(self.where, f"a row holds more than {MAX_COLUMNS:,} cells")
        elif name == b"row":
            grid.row_elements += 1
            if grid.row_elements > MAX_SHEET_ROWS:
                raise _too_long(self.where, f"a sheet holds more than {MAX_SHEET_ROWS:,} rows")
            self.row_at(_integer(digits) if digits else grid.row + 1)
        elif name == b"si":
            grid.shared_strings += 1
            if grid.shared_strings > MAX_SHARED_STRINGS:
                raise self.too_many_strings(f"more than {MAX_SHARED_STRINGS:,} shared strings")
        else:  # <sst uniqueCount=...>: calamine sets memory aside for that many strings
            tag = match.string[match.start() : match.string.find(b">", match.start())]
            for value in _DECLARED_COUNT.findall(tag):
                if (count := self.number(value)) > MAX_SHARED_STRINGS:
                    raise self.too_many_strings(f"it declares {count:,} shared strings")

    def too_many_strings(self, found: str) -> InputFileError:
        return over_limit(self.where, found, "shared strings", MAX_SHARED_STRINGS, "strings")


class _OdsScan(_XmlScan):
    """Rows and cells as OpenDocument repeats them; only cells with content count, as a run of
    repeated blank cells (which LibreOffice writes to the sheet's edge) takes no memory."""

    pattern = _ODS_TAG

    def tag(self, match: re.Match[bytes]) -> None:
        name, attributes = match.groups()
        grid = self.grid
        repeated = _REPEATED.search(attributes)
        count = self.number(repeated.group(1)) if repeated else 1
        if name == b"table":
            grid.row = grid.column = 0
        elif name == b"table-row":
            self.row_at(grid.row + 1)
            grid.row += count - 1  # the row's cells are laid out again on each repeat
        elif attributes.rstrip().endswith(b"/") and b"value" not in attributes:
            grid.column += count  # blank cells
        else:
            self.cell_at(grid.column + count)


def _integer(digits: bytes) -> int:
    """Digits as a number, capped far past every limit: Python refuses to read 4,300 digits."""
    return int(digits) if len(digits) <= 12 else 10**12


def _column_number(letters: bytes) -> int:
    """A1-style column letters as a number: A is 1, Z 26, AA 27."""
    number = 0
    for letter in letters[:12].upper():  # past any limit already
        number = number * 26 + letter - 64
    return number


def _too_wide(where: str, found: str) -> InputFileError:
    return over_limit(where, found, "columns", MAX_COLUMNS, "columns")


def _too_long(where: str, found: str) -> InputFileError:
    return over_limit(where, found, "rows", MAX_SHEET_ROWS, "rows")


def _too_big(where: str, found: str) -> InputFileError:
    return over_limit(where, found, "unpacked size", MAX_UNCOMPRESSED_BYTES, "bytes")


def _too_dense(where: str, part: str, ratio: int) -> InputFileError:
    return over_limit(
        where,
        f"part {part} unpacks to {ratio:,} times its size",
        "compression ratio",
        MAX_COMPRESSION_RATIO,
        "times",
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
