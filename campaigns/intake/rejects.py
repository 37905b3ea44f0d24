"""The rejects file: every rejected row with the file's own columns, its row number and the
reason, for the person who fixes the list in Excel and imports it again."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import pandas as pd

from campaigns.errors import UserError
from campaigns.reports.cells import neutralise

SUFFIXES = (".csv", ".xlsx")


def check_rejects_path(path: str | Path, source: str | Path) -> Path:
    """The rejects file's path, refused before any work if it cannot be right."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise UserError(f"{path.name}: the rejects file must end in .csv or .xlsx")
    if path.resolve() == Path(source).resolve():
        raise UserError(f"{path.name}: the rejects file would overwrite the file being imported")
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: the folder {path.parent} does not exist")
    return path


class RejectsFile:
    """Rejected rows appended as each chunk is examined; the file appears whole when the import
    ends, and not at all when it fails.

    CSV is UTF-8 with a BOM, so Excel on Windows reads the Chinese.  Cells and column names go
    through the reports' ``neutralise``: one starting with = + - @ gets a leading ' so that
    neither format runs it as a formula (CSV injection).
    """

    def __init__(self, path: str | Path, columns: list[str]) -> None:
        self.path = Path(path)
        self._partial = self.path.with_name(f".{self.path.name}.partial")
        self._csv = self.path.suffix.lower() == ".csv"
        header = neutralise(pd.DataFrame(columns=columns), xlsx=not self._csv)
        try:
            # Opened now, so that a file that cannot be written is refused before the import.
            self._handle = self._partial.open("w", encoding="utf-8-sig", newline="")
            if self._csv:
                header.to_csv(self._handle, index=False)
            else:
                from openpyxl import Workbook  # only for .xlsx rejects: slow to import

                self._book = Workbook(write_only=True)
                self._sheet = self._book.create_sheet("rejected")
                self._sheet.append(list(header.columns))
        except OSError as exc:
            raise UserError(f"cannot write {self.path}: {exc.strerror}") from None

    def write(self, rows: pd.DataFrame) -> None:
        """Append ``rows``, whose columns are those given when the file was opened."""
        rows = neutralise(rows, xlsx=not self._csv)
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
            self._handle.close()
            if not self._csv and kind is None:
                self._book.save(self._partial)
            if kind is None:
                self._partial.replace(self.path)
        except OSError as exc:
            raise UserError(f"cannot write {self.path}: {exc.strerror}") from None
        finally:
            if not self._csv and not self._sheet.closed:
                # Finish the sheet's own temporary file now: left to the garbage collector,
                # it prints an "Exception ignored" traceback after a failed save.
                self._sheet.close()
            self._partial.unlink(missing_ok=True)
