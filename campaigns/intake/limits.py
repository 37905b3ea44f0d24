"""The limits every recipients file is held to, whatever its format, in one place.

Each is far beyond any real recipients list and far below what exhausts the machine, so that a
hostile file (a decompression bomb, a row of twenty million cells) is refused in one line
before it can take gigabytes of memory or minutes of time.  The README's "Limits" table lists
them with the reason for each value.
"""

from __future__ import annotations

from campaigns.errors import InputFileError

MAX_COLUMNS = 4_096  # 2,000-column exports exist; each column costs pandas time and memory
MAX_CELL_CHARS = 32_767  # Excel's own longest cell
MAX_SHEET_ROWS = 1_048_576  # Excel's own longest sheet; CSV and text files have no row limit
MAX_HEADER_CHARS = 1 << 20  # the header row as text: all 4,096 columns at 256 characters
MAX_SHARED_STRINGS = 5_000_000  # distinct texts of a workbook: 5 text columns x Excel's rows
MAX_UNCOMPRESSED_BYTES = 4 << 30  # a workbook's parts once unpacked, all together
MAX_COMPRESSION_RATIO = 200  # unpacked / packed size of any part over RATIO_FLOOR_BYTES
MAX_PARTS = 10_000  # files inside a workbook: a sheet, its drawing and pictures are a few each
MAX_LOADED_CELLS = 8_000_000  # cells of a .xls or .ods sheet, which are read whole
# What is handed on at a time, so that memory stays flat however long the file is.
CHUNK_ROWS = 20_000  # rows handed on at a time, at most
CHUNK_CELLS = 200_000  # cells handed on at a time, at most: a wide file comes in fewer rows

RATIO_FLOOR_BYTES = 1 << 20  # small parts (styles, themes) compress far better; they are harmless
# No XML text run of a cell within MAX_CELL_CHARS is longer in bytes: 3 bytes a character in
# UTF-8, or 5 for &amp; and the like, which Excel writes for & < > " characters.
MAX_XML_TEXT_BYTES = 5 * MAX_CELL_CHARS + 1024


def over_limit(where: str, found: str, limit: str, value: int, unit: str) -> InputFileError:
    """The one-line refusal for a file past a limit: what was found, and the limit's name and
    value as the README's table gives them."""
    return InputFileError(
        f"{where}: refused: {found}; the limit for {limit} is {value:,} {unit}"
        " (no recipients list comes near it)"
    )


def check_width(width: int, where: str) -> None:
    if width > MAX_COLUMNS:
        raise over_limit(
            where, f"the header row has {width:,} columns", "columns", MAX_COLUMNS, "columns"
        )


def chunk_rows(width: int) -> int:
    """Rows a chunk holds: CHUNK_ROWS, fewer for a wide file so that a chunk stays within
    CHUNK_CELLS cells."""
    return max(1, min(CHUNK_ROWS, CHUNK_CELLS // max(width, 1)))
