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

import codecs
import csv
import io
import re
import shlex
import stat
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from campaigns.errors import InputFileError, UserError
from campaigns.intake.limits import MAX_CELL_CHARS, MAX_COLUMNS, MAX_HEADER_CHARS, over_limit
from campaigns.intake.spreadsheets import ZIP_MAGIC, cell_text, file_head, open_sheet

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
CHUNK_ROWS = 20_000  # rows handed on at a time, at most
CHUNK_CELLS = 200_000  # cells handed on at a time, at most: a wide file comes in fewer rows
BLOCK_BYTES = 256 << 10  # CSV text pyarrow parses at a time; it reads 32 blocks ahead

_GUESSED_ENCODINGS = ("utf-8-sig", "gb18030")  # gb18030 is a superset of GBK and GB2312
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # Excel's "Unicode Text" export
_EMPTY_HEADER = "{name}: row 1 is empty; put the column names in row 1"
_SNIFF_CHARS = 8192
_HEADER_READ_CHARS = 64 << 10
_LINE_END = re.compile("[\r\n]")
_COLUMNS_SHOWN = 20  # columns a message lists
_DECODE_BYTES = 1 << 20
_DELIMITERS = ",;\t"

Grid = tuple[pd.DataFrame, np.ndarray]  # cells by position, and the Excel row number of each row


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
    chunks: Iterator[Chunk]  # one pass; raises InputFileError at a bad row or if no row has data


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
        grids = _text_grids(path, name, suffix, encoding)
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


def _chunks(grids: Iterator[Grid], columns: list[str], where: str) -> Iterator[Chunk]:
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


def _chunk_rows(width: int) -> int:
    """Rows a chunk holds: CHUNK_ROWS, fewer for a wide file so that a chunk stays within
    CHUNK_CELLS cells."""
    return max(1, min(CHUNK_ROWS, CHUNK_CELLS // max(width, 1)))


def _check_width(width: int, where: str) -> None:
    if width > MAX_COLUMNS:
        raise over_limit(
            where, f"the header row has {width:,} columns", "columns", MAX_COLUMNS, "columns"
        )


# -- delimited text ----


def _text_grids(
    path: Path, name: str, suffix: str, encoding: str | None
) -> Iterator[Any]:  # the header row and name, then Grid chunks
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
    _check_width(len(header), name)
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
    size = _chunk_rows(width)
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


# -- workbooks ----


def _workbook_grids(
    path: Path, name: str, sheet: str | None
) -> Iterator[Any]:  # the header row and "file (sheet)", then Grid chunks
    where, rows = open_sheet(path, name, sheet)
    try:
        header = [cell_text(value, where) for value in next(rows, ())]
        if not header:
            raise InputFileError(f"{where}: the sheet is empty")
        _check_width(len(header), where)
        yield header, where
        size, cells, numbers = _chunk_rows(len(header)), [], []
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
