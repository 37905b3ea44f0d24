"""Measure an old Excel workbook (.xls: BIFF8 records in an OLE compound file) before calamine
reads it.

calamine lays a sheet out whole, one slot per cell from the first to the last it finds, so a
6 KB .xls with one cell at A1 and one at IV65536 takes over 1 GB before its first row is seen.
The cells' places are in the workbook stream's cell records, which are read here without
keeping anything but the largest span of any sheet.  Anything this reader cannot follow is
left to calamine, which reports it as damage.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

_HEADER_BYTES = 512
_END_OF_CHAIN = 0xFFFFFFFA  # this and above: no further sector
_DIRECTORY_ENTRY = 128
_STREAM_NAMES = ("Workbook", "Book")  # BIFF8, and BIFF5 as older programs wrote it
_BOF = 0x0809  # the start of each sheet's records
# Records that place a cell at (row, column): NUMBER, LABELSST, RK, BLANK, LABEL, BOOLERR,
# FORMULA, RSTRING; and MULRK and MULBLANK, whose last column ends the record.
_CELL_RECORDS = frozenset({0x0203, 0x00FD, 0x027E, 0x0201, 0x0204, 0x0205, 0x0006, 0x00D6})
_MULTI_CELL_RECORDS = frozenset({0x00BD, 0x00BE})


def largest_span(data: bytes) -> int:
    """The most cells (rows x columns, first to last) any sheet of the .xls ``data`` spans;
    0 when the file cannot be followed (calamine will say what is wrong)."""
    try:
        stream = _workbook_stream(data)
    except (struct.error, IndexError, ValueError):
        return 0
    return _span(stream) if stream else 0


def _span(stream: bytes) -> int:
    largest, rows, columns = 0, None, None
    position, end = 0, len(stream) - 4
    while position <= end:
        kind, length = struct.unpack_from("<HH", stream, position)
        body = position + 4
        position = body + length
        if kind == _BOF:
            largest, rows, columns = max(largest, _cells(rows, columns)), None, None
        elif length >= 4 and (kind in _CELL_RECORDS or kind in _MULTI_CELL_RECORDS):
            row, first = struct.unpack_from("<HH", stream, body)
            last = struct.unpack_from("<H", stream, position - 2)[0]
            last = last if kind in _MULTI_CELL_RECORDS else first
            rows = (min(row, rows[0]), max(row, rows[1])) if rows else (row, row)
            columns = (min(first, columns[0]), max(last, columns[1])) if columns else (first, last)
    return max(largest, _cells(rows, columns))


def _cells(rows: tuple[int, int] | None, columns: tuple[int, int] | None) -> int:
    if rows is None or columns is None:
        return 0
    return (rows[1] - rows[0] + 1) * (columns[1] - columns[0] + 1)


def _workbook_stream(data: bytes) -> bytes | None:
    """The workbook stream of the compound file ``data``, or None if it has none."""
    if len(data) < _HEADER_BYTES:
        return None
    return _CompoundFile(data).stream(_STREAM_NAMES)


class _CompoundFile:
    """Just enough of an OLE compound file (MS-CFB) to read one stream."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sector_size = 1 << struct.unpack_from("<H", data, 0x1E)[0]
        self.mini_size = 1 << struct.unpack_from("<H", data, 0x20)[0]
        fat_count, self.directory_start = struct.unpack_from("<II", data, 0x2C)
        self.mini_cutoff, self.mini_fat_start, _, difat_start, difat_count = struct.unpack_from(
            "<IIIII", data, 0x38
        )
        difat = list(_numbers(data[0x4C:_HEADER_BYTES]))
        next_sector = difat_start
        for _ in range(difat_count):  # each DIFAT sector ends with the number of the next
            if next_sector >= _END_OF_CHAIN:
                break
            *entries, next_sector = _numbers(self.sector(next_sector))
            difat += entries
        self.fat = [
            entry for number in difat[:fat_count] for entry in _numbers(self.sector(number))
        ]
        self.mini_stream = b""

    def sector(self, number: int) -> bytes:
        start = (number + 1) * self.sector_size
        if start + self.sector_size > len(self.data):
            raise ValueError("a sector beyond the file")
        return self.data[start : start + self.sector_size]

    def mini_sector(self, number: int) -> bytes:
        return self.mini_stream[number * self.mini_size : (number + 1) * self.mini_size]

    def read(self, start: int, table: list[int], source: Callable[[int], bytes]) -> bytes:
        return b"".join(source(number) for number in _chain(start, table))

    def stream(self, names: tuple[str, ...]) -> bytes | None:
        """The first stream named one of ``names``."""
        directory = self.read(self.directory_start, self.fat, self.sector)
        entries = [directory[i : i + _DIRECTORY_ENTRY] for i in range(0, len(directory), 128)]
        for entry in entries:
            name_length = struct.unpack_from("<H", entry, 64)[0]
            name = entry[: max(name_length - 2, 0)].decode("utf-16-le", errors="replace")
            if name in names and entry[66] == 2:  # a stream
                start, size = struct.unpack_from("<II", entry, 116)
                if size >= self.mini_cutoff:
                    return self.read(start, self.fat, self.sector)[:size]
                root_start = struct.unpack_from("<I", entries[0], 116)[0]
                self.mini_stream = self.read(root_start, self.fat, self.sector)
                mini_fat = list(_numbers(self.read(self.mini_fat_start, self.fat, self.sector)))
                return self.read(start, mini_fat, self.mini_sector)[:size]
        return None


def _numbers(raw: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(raw) // 4}I", raw)


def _chain(start: int, table: list[int]) -> Iterator[int]:
    """The sector numbers of a chain from ``start``, following ``table``; at most as many as
    the table has, so that a looping chain ends."""
    number = start
    for _ in range(len(table) + 1):
        if number >= _END_OF_CHAIN:
            return
        if number >= len(table):
            raise ValueError("a chain beyond its table")
        yield number
        number = table[number]
