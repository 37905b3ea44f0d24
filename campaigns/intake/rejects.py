"""The rejects file: every rejected row with the file's own columns, its row number and the
reason, for the person who fixes the list in Excel and imports it again."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import pandas as pd

from campaigns.errors import UserError

SUFFIXES = (".csv", ".xlsx")
_FORMULA = r"^[=+\-@\t\r]"  # what Excel (or openpyxl) would take for the start of a formula
_NOT_XML = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"  # control characters an .xlsx cannot hold


def check_rejects_path(path: str | Path, source: str | Path) -> Path:
    """The rejects file's path, refused before any work if it cannot be right."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise UserError(f"{path.name}: the rejects file must end in .csv or .xlsx")
    if path.resolve() == Path(source).resolve():
        raise UserError(f"{path.name}: the rejects file would overwrite the file being imported")
    return path


class RejectsFile:
    """Rejected rows appended as each chunk is examined; the file appears whole when the import
    ends, and not at all when it fails.

    CSV is UTF-8 with a BOM, so Excel on Windows reads the Chinese.  A text cell starting with
    = + - @ gets a leading ' so that neither format runs it as a formula (CSV injection).
    """

    def __init__(self, path: str | Path, columns: list[str]) -> None:
        self.path = Path(path)
        self._partial = self.path.with_name(f".{self.path.name}.partial")
        self._csv = self.path.suffix.lower() == ".csv"
        try:
            if self._csv:
                self._handle = self._partial.open("w", encoding="utf-8-sig", newline="")
                pd.DataFrame(columns=columns).to_csv(self._handle, index=False)
            else:
                from openpyxl import Workbook  # only for .xlsx rejects: slow to import

                self._book = Workbook(write_only=True)
                self._sheet = self._book.create_sheet("rejected")
                self._sheet.append(columns)
        except OSError as exc:
            raise UserError(f"cannot write {self.path}: {exc.strerror}") from None

    def write(self, rows: pd.DataFrame) -> None:
        """Append ``rows``, whose columns are those given when the file was opened."""
        rows = _defused(rows, xlsx=not self._csv)
        try:
            if self._csv:
                rows.to_csv(self._handle, index=False, header=False)
            else:
                for row in rows.itertuples(index=False):
                    self._sheet.append(list(row))
        except OSError as exc:
            raise UserError(f"cannot write {self.path}: {exc.strerror}") from None

    def __enter__(self) -> RejectsFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._csv:
                self._handle.close()
            elif kind is None:
                self._book.save(self._partial)
            if kind is None:
                self._partial.replace(self.path)
        except OSError as exc:
            raise UserError(f"cannot write {self.path}: {exc.strerror}") from None
        finally:
            self._partial.unlink(missing_ok=True)


def _defused(rows: pd.DataFrame, *, xlsx: bool) -> pd.DataFrame:
    rows = rows.copy()
    for position in range(rows.shape[1]):
        column = rows.iloc[:, position]
        if pd.api.types.is_string_dtype(column):
            column = column.mask(column.str.match(_FORMULA), "'" + column)
            if xlsx:
                column = column.str.replace(_NOT_XML, "", regex=True)
            rows.isetitem(position, column)
    return rows
