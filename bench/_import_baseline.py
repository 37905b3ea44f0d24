"""Baseline for ``bench.import``: what a user writes by hand, with no validation at all.

``python bench/_import_baseline.py FILE.csv DB.sqlite`` reads the CSV with pandas (the default
engine, every cell as text so phone numbers stay intact) and stores it with ``DataFrame.to_sql``.
"""

from __future__ import annotations

import sqlite3
import sys

import pandas as pd


def main(csv_path: str, db_path: str) -> None:
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    connection = sqlite3.connect(db_path)
    frame.to_sql("recipients", connection, index=False, if_exists="replace")
    connection.commit()
    connection.close()
    print(len(frame))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
