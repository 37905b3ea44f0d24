"""Delimited text (CSV, TSV, Excel's "Unicode Text"): the encoding guessed or forced, the
delimiter sniffed from the header row, rows parsed by pyarrow a block at a time, and every cell
held to the limits.

``text_grids`` yields the header row and the file's name first, then Grid chunks.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import deque
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from campaigns.errors import InputFileError
from campaigns.intake.limits import (
    MAX_CELL_CHARS,
    MAX_HEADER_CHARS,
    check_width,
    chunk_rows,
    over_limit,
)
from campaigns.intake.spreadsheets import ZIP_MAGIC, file_head

Grid = tuple[pd.DataFrame, np.ndarray]  # cells by position, and the Excel row number of each row

BLOCK_BYTES = 256 << 10  # CSV text pyarrow parses at a time; it reads 32 blocks ahead
_GUESSED_ENCODINGS = ("utf-8-sig", "gb18030")  # gb18030 is a superset of GBK and GB2312
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # Excel's "Unicode Text" export
_SNIFF_CHARS = 8192
_HEADER_READ_CHARS = 64 << 10
_LINE_END = re.compile("[\r\n]")
_DECODE_BYTES = 1 << 20
_DELIMITERS = ",;\t"


def text_grids(
    path: Path, name: str, suffix: str, encoding: str | None
) -> Generator[Any, None, None]:  # the header row and name, then Grid chunks
    if file_head(path, len(ZIP_MAGIC)) == ZIP_MAGIC:
        raise InputFileError(f"{name}: this is an Excel workbook, not text; rename it to .xlsx")
    codec = _detect_encoding(path, name, encoding)
    line, sample = _header_line(path, name, codec)
    delimiter = "\t" if suffix == ".tsv" else _sniff(sample)
    header = _header_cells(line, delimiter, name)
    yield header, name
    # pyarrow needs a whole row inside one block, the header row too.
    block = max(BLOCK_BYTES, 2 * len(line.encode(codec, errors="replace")))
    yield from _csv_grids(path, name, codec, delimiter, len(header), block)


def _header_line(path: Path, name: str, codec: str) -> tuple[str, str]:
    """(the header row's text, the file's first few KB for sniffing the delimiter).

    The header is read to its end, however long (up to MAX_HEADER_CHARS): a quoted line break
    does not end it.
    """
    with path.open(encoding=codec, newline="") as handle:
        text = handle.read(_SNIFF_CHARS).removeprefix("\ufeff")  # a BOM read as forced UTF-8
        while (end := _record_end(text)) is None:
            if len(text) > MAX_HEADER_CHARS:
                raise over_limit(
                    name,
                    f"the header row is longer than {MAX_HEADER_CHARS:,} characters",
                    "the header row",
                    MAX_HEADER_CHARS,
                    "characters",
                )
            more = handle.read(_HEADER_READ_CHARS)
            if not more:
                end = len(text)
                break
            text += more
    return text[:end], text[: max(_SNIFF_CHARS, end)]


def _record_end(text: str) -> int | None:
    """Where the first record of ``text`` ends: its first line break outside quotes."""
    for line_end in _LINE_END.finditer(text):
        if text.count('"', 0, line_end.start()) % 2 == 0:
            return line_end.start()
    return None


def _header_cells(line: str, delimiter: str, name: str) -> list[str]:
    """The header row's cells, held to the column and cell-length limits."""
    try:
        header = next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:  # a cell past the csv module's own limit, 131,072 characters
        found = f"the header row has a cell of more than {csv.field_size_limit():,} characters"
        raise _cell_too_long(name, found) from None
    check_width(len(header), name)
    longest = max(map(len, header), default=0)
    if longest > MAX_CELL_CHARS:
        raise _cell_too_long(name, f"the header row has a cell of {longest:,} characters")
    return header


def _cell_too_long(where: str, found: str) -> InputFileError:
    return over_limit(
        where,
        found,
        "cell length",
        MAX_CELL_CHARS,
        "characters",
    )


def _csv_grids(
    path: Path, name: str, codec: str, delimiter: str, width: int, block: int
) -> Iterator[Grid]:
    """The rows, a chunk at a time, each with its row number (the header is row 1)."""
    odd = _OddRows(name, delimiter, width)
    arrow_codec = "utf8" if codecs.lookup(codec).name in ("utf-8", "utf-8-sig") else codec
    size = chunk_rows(width)
    try:
        with pacsv.open_csv(
            str(path),
            read_options=pacsv.ReadOptions(
                encoding=arrow_codec,
                block_size=block,
                use_threads=False,  # row numbers of odd rows are only known single-threaded
                autogenerate_column_names=True,  # the header is data row 1, named by us
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=True,
                ignore_empty_lines=False,  # a blank line still counts as a row in Excel
                invalid_row_handler=odd,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(width)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        ) as reader:
            parts: list[Grid] = []
            for batch in reader:
                grid = batch.to_pandas().set_axis(range(width), axis=1)
                numbers, taken = odd.place(batch.num_rows)
                parts.append(_with_odd_rows(grid, numbers, taken))
                _check_cell_lengths(batch, *parts[-1], name, every_column=bool(taken))
                if sum(len(numbers) for _, numbers in parts) >= size:
                    yield _joined(parts)
                    parts = []
            empty = pd.DataFrame(columns=range(width), dtype="str")
            yield _joined([*parts, _with_odd_rows(empty, *odd.place(0))])
    except pa.ArrowInvalid as exc:
        reason = str(exc).splitlines()[0]
        if "straddl" in reason:  # a row longer than a block: a giant cell, or a stray quote
            raise over_limit(
                name,
                f"a row is longer than {block:,} bytes (or a quoted cell never ends: look for a"
                ' stray ")',
                "cell length",
                MAX_CELL_CHARS,
                "characters",
            ) from None
        raise InputFileError(odd.error or f"{name}: cannot be read as CSV ({reason})") from None


def _check_cell_lengths(
    batch: pa.RecordBatch, grid: pd.DataFrame, numbers: np.ndarray, name: str, every_column: bool
) -> None:
    """Refuse a cell past MAX_CELL_CHARS; its bytes are counted first, in C, so that only a
    column that may hold one is measured in characters (every column when odd rows, which
    pyarrow did not parse, were put back)."""
    for position, column in enumerate(batch.columns):
        bytes_over = len(column) and pc.max(pc.binary_length(column)).as_py() > MAX_CELL_CHARS
        if every_column or bytes_over:
            lengths = grid[position].str.len().to_numpy()
            over = np.flatnonzero(lengths > MAX_CELL_CHARS)
            if len(over):
                row, length = numbers[over[0]], lengths[over[0]]
                raise _cell_too_long(name, f"row {row} has a cell of {length:,} characters")


def _joined(parts: list[Grid]) -> Grid:
    if len(parts) == 1:
        return parts[0]
    grids = [grid for grid, numbers in parts if len(numbers)]
    frame = pd.concat(grids, ignore_index=True) if grids else parts[0][0]
    return frame, np.concatenate([numbers for _, numbers in parts])


def _with_odd_rows(
    grid: pd.DataFrame, numbers: np.ndarray, odd: list[tuple[int, list[str]]]
) -> Grid:
    """The batch with the padded odd rows put back in place, without the header row."""
    if odd:
        extra = pd.DataFrame([cells for _, cells in odd], columns=grid.columns, dtype="str")
        grid = pd.concat([grid, extra], ignore_index=True)
        numbers = np.concatenate([numbers, [number for number, _ in odd]])
        order = np.argsort(numbers, kind="stable")
        grid, numbers = grid.iloc[order].reset_index(drop=True), numbers[order]
    if len(numbers) and numbers[0] == 1:
        grid, numbers = grid.iloc[1:].reset_index(drop=True), numbers[1:]
    return grid, numbers


class _OddRows:
    """pyarrow's handler for rows whose cell count differs from the header's.

    pyarrow can only skip such rows: a short row, or one whose extra cells are empty (as
    spreadsheets write them), is padded or cut here and put back in place by its row number.
    A row with extra non-empty cells is an error; since pyarrow swallows exceptions raised in a
    handler, the message is kept in ``error`` and pyarrow is told to stop.
    """

    def __init__(self, name: str, delimiter: str, width: int) -> None:
        self.name, self.delimiter, self.width = name, delimiter, width
        self.waiting: deque[tuple[int, list[str]]] = deque()  # (row number, cells), in order
        self.error: str | None = None
        self.next_row = 1  # the header is row 1

    def __call__(self, row: Any) -> str:
        reader = csv.reader(io.StringIO(row.text, newline=""), delimiter=self.delimiter)
        cells = next(reader, [])
        if row.number is None or any(cell.strip() for cell in cells[self.width :]):
            self.error = (
                f"{self.name}: row {row.number} has {len(cells)} cells but the header row has"
                f" {self.width}; look for a stray {self.delimiter!r} or quote in that row"
            )
            return "error"
        self.waiting.append((row.number, cells[: self.width] + [""] * (self.width - len(cells))))
        return "skip"

    def place(self, count: int) -> tuple[np.ndarray, list[tuple[int, list[str]]]]:
        """Row numbers for the next ``count`` rows pyarrow kept, and the odd rows among them.

        pyarrow reads a block ahead, so odd rows of the next batch may be waiting already: only
        those inside this batch's span, or right after it, are taken.
        """
        start, end = self.next_row, self.next_row + count
        taken = []
        while self.waiting and self.waiting[0][0] <= end:
            taken.append(self.waiting.popleft())
            end += 1
        numbers = np.arange(start, end, dtype=np.int64)
        if taken:
            numbers = numbers[~np.isin(numbers, [number for number, _ in taken])]
        self.next_row = end
        return numbers, taken


def _detect_encoding(path: Path, name: str, encoding: str | None) -> str:
    """The forced encoding, else the first of UTF-8 / GB18030 the whole file decodes in."""
    if encoding:
        candidates: tuple[str, ...] = (encoding,)
    else:
        utf16 = file_head(path, 2) in _UTF16_BOMS
        candidates = ("utf-16",) if utf16 else _GUESSED_ENCODINGS
    for candidate in candidates:
        try:
            codecs.lookup(candidate)
        except LookupError:
            raise InputFileError(f"{name}: unknown encoding {candidate!r}") from None
        if _decodes(path, name, candidate, guessing=not encoding):
            return candidate
    wanted = f"{encoding} text" if encoding else "text (UTF-8 or GBK)"
    raise InputFileError(f"{name}: not a spreadsheet: it is not {wanted}; save it as CSV or .xlsx")


def _decodes(path: Path, name: str, codec: str, guessing: bool) -> bool:
    """Whether the whole file is text in ``codec``, read a block at a time.

    Binary files decode as GB18030 more often than not, hence the NUL check.  A file that is
    UTF-8 up to one bad byte stops here: read as GBK it would turn into silent mojibake.
    """
    decoder = codecs.getincrementaldecoder(codec)()
    lines, ascii_so_far, has_text, first = 0, True, False, True
    with path.open("rb") as handle:
        while True:
            block = handle.read(_DECODE_BYTES)
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                before = block[: max(exc.start - pending, 0)]
                if first:
                    before = before.removeprefix(codecs.BOM_UTF8)
                if (
                    guessing
                    and codec == _GUESSED_ENCODINGS[0]
                    and not (ascii_so_far and before.isascii())
                ):
                    line = lines + before.count(b"\n") + 1
                    raise InputFileError(
                        f"{name}: line {line} is not valid UTF-8 although the lines before it"
                        " are; fix that line or give the encoding explicitly"
                    ) from None
                return False
            if "\x00" in text:
                return False
            if not block:
                break
            lines += block.count(b"\n")
            ascii_so_far = ascii_so_far and text.isascii()
            has_text = has_text or bool(text.strip())
            first = False
    if not has_text:
        raise InputFileError(f"{name}: the file is empty")
    return True


def _sniff(text: str) -> str:
    """The delimiter among , ; and tab, judged on the first few KB; comma when unclear."""
    sample = text[: text.rfind("\n") + 1] or text
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return ","
