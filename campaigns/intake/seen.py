"""The numbers an import has already accepted, with the row that brought each, in little memory.

De-duplicating a 5,000,000-row file must not take five times the memory of a 1,000,000-row one,
so a number costs 4 bytes of memory: its key (``phone_keys``, an int64) is split into its high
32 bits, which pick a bucket (every mainland number falls into one of two), and its low 32 bits,
kept sorted in that bucket.  The row numbers are needed only to say where a duplicate was first
seen, so they wait in a temporary file and only the rows of duplicates are read back.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np

ROW = np.dtype("<i4")  # a row number in the temporary file


@dataclass
class _Run:
    """Sorted low halves of keys; their rows sit at ``offset`` (in rows) in the rows file."""

    low: np.ndarray  # uint32, sorted
    offset: int


class SeenNumbers:
    """Keys with their first row: ``add`` new ones, ask ``rows_of`` for the row of each.

    Each ``add`` makes a sorted run per bucket; runs of similar size are merged (as in a binary
    counter) up to MERGE_LIMIT, so a lookup searches a handful of runs and no merge copies more
    than a few MB.  ``close`` removes the temporary file.
    """

    MERGE_LIMIT = 1 << 18

    def __init__(self) -> None:
        self.buckets: dict[int, list[_Run]] = {}
        self.count = 0
        self._rows = tempfile.TemporaryFile(prefix="campaigns-rows-")  # noqa: SIM115 (see close)
        self._end = 0  # rows written to the file so far

    def add(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """Add keys not seen before, sorted, with their rows."""
        for high, part in _by_bucket(keys):
            low = _low_half(keys[part])
            self._add_run(self.buckets.setdefault(high, []), low, rows[part].astype(ROW))
        self.count += len(keys)

    def rows_of(self, keys: np.ndarray) -> np.ndarray:
        """The row of each of the sorted ``keys`` seen before, else 0."""
        found = np.zeros(len(keys), dtype=np.int64)
        for high, part in _by_bucket(keys):
            low = _low_half(keys[part])
            for run in self.buckets.get(high, ()):
                at = np.minimum(np.searchsorted(run.low, low), len(run.low) - 1)
                hit = run.low[at] == low
                found[part.start + np.flatnonzero(hit)] = self._read(run.offset + at[hit])
        return found

    def close(self) -> None:
        self._rows.close()

    def __enter__(self) -> SeenNumbers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add_run(self, runs: list[_Run], low: np.ndarray, rows: np.ndarray) -> None:
        while runs and len(runs[-1].low) <= len(low) < self.MERGE_LIMIT:
            older = runs.pop()
            # the two runs share no key: each new one goes in where its place is among the older
            at = np.searchsorted(older.low, low)
            older_rows = self._read_stretch(older.offset, len(older.low))
            low, rows = np.insert(older.low, at, low), np.insert(older_rows, at, rows)
        runs.append(_Run(low, self._write(rows)))

    def _write(self, rows: np.ndarray) -> int:
        """Append ``rows`` to the file; return where they start.  (A merged run is written
        again and the old copy left behind: the file stays a few times 4 bytes a number.)"""
        offset = self._end
        os.pwrite(
            self._rows.fileno(), np.ascontiguousarray(rows, ROW).tobytes(), offset * ROW.itemsize
        )
        self._end += len(rows)
        return offset

    def _read(self, positions: np.ndarray) -> np.ndarray:
        """The rows at ``positions`` (ascending): one read per contiguous stretch."""
        if not len(positions):
            return np.zeros(0, dtype=ROW)
        breaks = np.flatnonzero(np.diff(positions) != 1) + 1
        stretches = np.split(positions, breaks)
        return np.concatenate([self._read_stretch(int(s[0]), len(s)) for s in stretches])

    def _read_stretch(self, start: int, count: int) -> np.ndarray:
        data = os.pread(self._rows.fileno(), count * ROW.itemsize, start * ROW.itemsize)
        return np.frombuffer(data, dtype=ROW)


def _by_bucket(keys: np.ndarray) -> list[tuple[int, slice]]:
    """(high 32 bits, slice of ``keys``) for each bucket present in the sorted ``keys``."""
    if not len(keys):
        return []
    high = keys >> 32
    starts = np.flatnonzero(np.r_[True, high[1:] != high[:-1]])
    ends = [*starts[1:], len(keys)]
    return [(int(high[s]), slice(int(s), int(e))) for s, e in zip(starts, ends, strict=True)]


def _low_half(keys: np.ndarray) -> np.ndarray:
    return (keys & 0xFFFFFFFF).astype(np.uint32)
