"""Reading an XLSX: calamine against openpyxl's read-only mode, side by side (issue 13).

A 200,000-row workbook (phone as a number, name and order as shared strings, as Excel writes
them) is made once with xlsxwriter and kept in ``bench/.cache``.  Each reader runs in a child
process of its own, so that time and peak RSS are its own (``wait4`` rusage):

- ``openpyxl``, ``calamine``: the libraries alone, every row as Python values;
- ``campaigns/openpyxl``, ``campaigns/calamine``: ``read_recipients`` to the last chunk, the
  archive checks included, forced to openpyxl (as for a sheet over MAX_LOADED_CELLS) or as it
  reads such a sheet by default (calamine).

Goal: calamine's time at most openpyxl's, for the libraries and through ``read_recipients``.
"""

from __future__ import annotations

from pathlib import Path

from bench._common import (
    CACHE,
    PYTHON,
    goal,
    median,
    parser,
    print_goals,
    print_table,
    run_child,
    write_results,
)

NAME = "read_xlsx"
READERS = {
    "openpyxl": (
        "import openpyxl, sys\n"
        "book = openpyxl.load_workbook(sys.argv[1], read_only=True, data_only=True)\n"
        "rows = sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))\n"
    ),
    "calamine": (
        "import python_calamine, sys\n"
        "book = python_calamine.CalamineWorkbook.from_path(sys.argv[1])\n"
        "rows = sum(1 for _ in book.get_sheet_by_index(0).iter_rows())\n"
    ),
    "campaigns/openpyxl": (
        "import sys\n"
        "from campaigns.intake import read, spreadsheets\n"
        "spreadsheets.MAX_LOADED_CELLS = 0\n"
        "rows = sum(len(c.frame) for c in read.read_recipients(sys.argv[1]).chunks)\n"
    ),
    "campaigns/calamine": (
        "import sys\n"
        "from campaigns.intake import read\n"
        "rows = sum(len(c.frame) for c in read.read_recipients(sys.argv[1]).chunks)\n"
    ),
}


MAKE = """
import sys, xlsxwriter
rows, path = int(sys.argv[1]), sys.argv[2]
book = xlsxwriter.Workbook(path)
sheet = book.add_worksheet("名单")
sheet.write_row(0, 0, ["手机号", "姓名", "订单号"])
for row in range(1, rows + 1):
    sheet.write_number(row, 0, 13_800_000_000 + row)
    sheet.write_string(row, 1, f"客户{row % 5000}")
    sheet.write_string(row, 2, f"DD{row:011d}")
book.close()
"""


def workbook(rows: int) -> Path:
    """The cached workbook of ``rows`` recipients; made on first use, in a child process: a
    child's peak RSS counts its parent's memory at the fork, so the parent must stay small."""
    path = CACHE / f"read-xlsx-{rows}-v2.xlsx"
    if not path.exists():
        partial = path.with_suffix(".partial.xlsx")
        run_child([PYTHON, "-c", MAKE, str(rows), str(partial)]).check("making the workbook")
        partial.rename(path)
    return path


def main() -> None:
    args_parser = parser(NAME, "calamine vs openpyxl read-only on one XLSX")
    args_parser.add_argument("--rows", type=int, default=200_000)
    args = args_parser.parse_args()
    rows = 300 if args.smoke else args.rows
    runs = 1 if args.smoke else (args.runs or 3)
    path = workbook(rows)
    measured: dict[str, list] = {reader: [] for reader in READERS}
    for _ in range(runs):
        for reader, code in READERS.items():
            child = run_child([PYTHON, "-c", code, str(path)]).check(reader)
            measured[reader].append({"s": child.wall, "rss_mb": child.maxrss_mb})
    table = {
        reader: {key: round(median(run[key] for run in done), 3) for key in ("s", "rss_mb")}
        for reader, done in measured.items()
    }
    print_table(
        f"{rows:,}-row XLSX, median of {runs} run(s)",
        ["reader", "seconds", "peak RSS MB"],
        [[reader, row["s"], row["rss_mb"]] for reader, row in table.items()],
    )
    goals = [
        goal("calamine / openpyxl time", table["calamine"]["s"] / table["openpyxl"]["s"], "<=", 1),
        goal(
            "campaigns: calamine / openpyxl time",
            table["campaigns/calamine"]["s"] / table["campaigns/openpyxl"]["s"],
            "<=",
            1,
        ),
        goal(
            "campaigns: calamine / openpyxl peak RSS",
            table["campaigns/calamine"]["rss_mb"] / table["campaigns/openpyxl"]["rss_mb"],
            "<=",
            1.5,
        ),
    ]
    print_goals(goals)
    write_results(
        NAME,
        args,
        {"params": {"rows": rows}, "rows": table, "goals": goals, "runs": measured, "notes": ""},
    )


if __name__ == "__main__":
    main()
