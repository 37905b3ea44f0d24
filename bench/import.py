"""Import speed and memory: ``campaigns import`` against ``read_csv`` + ``to_sql`` by hand.

A generated CSV (phone, name, order; 2 % invalid numbers, 1 % duplicates of an earlier row, 3 %
valid numbers written with +86, spaces or dashes) is made once per size and kept in
``bench/.cache``. Each run, in child processes so that time and peak RSS are the child's own
(``wait4`` rusage):

(a) baseline: ``pandas.read_csv(dtype=str)`` + ``DataFrame.to_sql`` into a new SQLite file, no
    validation at all (``bench/_import_baseline.py``);
(b) ``campaigns import`` into a new database: normalisation, validation, dedupe, rendering,
    messageIds, every row stored.

A third figure, the floor, says what stands in the way of b/a <= 1: the seconds SQLite alone
takes to write the rows (b) stored, with the same table, indexes and pragmas, copied by one
``INSERT ... SELECT`` in C, with no Python, reading or checking at all.

Goals (issue 5): b/a time <= 1.0; peak RSS of b <= 300 MB; with 5M rows, RSS within 10 % of 1M.
Run ``python -m bench.import --rows 1000000,5000000`` for the RSS comparison.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

from bench._common import (
    CACHE,
    MESSAGE,
    PYTHON,
    campaigns_cmd,
    cli_env,
    goal,
    median,
    parser,
    print_goals,
    print_table,
    run_child,
    spread,
    workdir,
    write_results,
)

NAME = "import"
BASELINE = Path(__file__).with_name("_import_baseline.py")
CAMPAIGN = "bench-import"
VERSION = 3
PREFIXES = (138, 139, 150, 186, 177, 199, 135, 158)
INVALID_KINDS = ("", "1380013800", "n/a", "010-65521234", "1.38001E+10", "+1 4155550100")


def recipients_csv(rows: int, seed: int = 5) -> Path:
    """The cached CSV of ``rows`` recipients; made on first use (a few seconds per million)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = CACHE / f"import-{rows}-v{VERSION}.csv"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    index = np.arange(rows, dtype=np.int64)
    prefix = np.array(PREFIXES, dtype=np.int64)[index % len(PREFIXES)]
    canonical = (prefix * 10**8 + (index * 7919 + 12345) % 10**8).astype(str).astype(object)
    phone = canonical.copy()
    special = rng.permutation(rows)
    invalid = special[: rows * 2 // 100]
    duplicate = np.sort(special[rows * 2 // 100 : rows * 3 // 100])
    messy = special[rows * 3 // 100 : rows * 6 // 100]
    phone[invalid] = np.array(INVALID_KINDS, dtype=object)[np.arange(len(invalid)) % 6]
    styles = (
        lambda p: "+86 " + p,
        lambda p: f"{p[:3]} {p[3:7]} {p[7:]}",
        lambda p: f"{p[:3]}-{p[3:7]}-{p[7:]}",
    )
    for k, position in enumerate(messy):
        phone[position] = styles[k % 3](canonical[position])
    # each duplicate repeats the number of a random earlier row that is neither invalid nor a
    # duplicate itself, so exactly 1 % of rows are rejected as duplicates
    plain = np.ones(rows, dtype=bool)
    plain[invalid] = False
    plain[duplicate] = False
    sources = np.flatnonzero(plain)
    earlier = np.searchsorted(sources, duplicate)
    keep = earlier > 0
    picks = sources[(rng.random(keep.sum()) * earlier[keep]).astype(np.int64)]
    phone[duplicate[keep]] = canonical[picks]
    table = pa.table(
        {
            "phone": pa.array(phone, pa.string()),
            "name": pa.array(np.char.add("客户", index.astype(str)).astype(object), pa.string()),
            "order": pa.array(
                np.char.add("DD", np.char.zfill(index.astype(str), 10)).astype(object), pa.string()
            ),
        }
    )
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as handle:  # a plain header, as Excel writes it (pyarrow quotes it)
        handle.write(b"phone,name,order\n")
        pacsv.write_csv(
            table, handle, pacsv.WriteOptions(include_header=False, quoting_style="none")
        )
    tmp.replace(path)
    return path


def baseline(csv_path: Path, db_path: Path) -> dict:
    child = run_child([PYTHON, str(BASELINE), str(csv_path), str(db_path)], timeout=3600).check(
        "baseline import"
    )
    return {"seconds": child.wall, "cpu_s": child.cpu, "maxrss_mb": child.maxrss_mb}


def campaigns_import(csv_path: Path, db_path: Path) -> dict:
    child = run_child(
        campaigns_cmd("import", str(csv_path), "--campaign", CAMPAIGN, "--message", MESSAGE),
        env=cli_env(db_path),
        timeout=3600,
    ).check("campaigns import")
    accepted = re.search(r"accepted\s+(\d+)", child.stdout)
    rejected = re.search(r"rejected\s+(\d+)", child.stdout)
    return {
        "seconds": child.wall,
        "cpu_s": child.cpu,
        "maxrss_mb": child.maxrss_mb,
        "accepted": int(accepted.group(1)) if accepted else None,
        "rejected": int(rejected.group(1)) if rejected else None,
    }


def sqlite_floor(db_path: Path, floor_path: Path) -> float:
    """Seconds for SQLite to write the messages of ``db_path`` into a new file, as (b) did."""
    connection = sqlite3.connect(floor_path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("ATTACH DATABASE ? AS source", (str(db_path),))
    schema = connection.execute(
        "SELECT sql FROM source.sqlite_master WHERE tbl_name = 'messages' AND sql IS NOT NULL"
    ).fetchall()
    for (sql,) in schema:
        connection.execute(sql)
    started = time.perf_counter()
    connection.execute("BEGIN")
    # the WHERE clause keeps SQLite from copying the b-tree pages whole (its transfer shortcut)
    connection.execute("INSERT INTO main.messages SELECT * FROM source.messages WHERE id > 0")
    connection.execute("COMMIT")
    connection.close()  # checkpoints the WAL, as the end of (b) does
    seconds = time.perf_counter() - started
    _remove(floor_path)
    return seconds


def _remove(db_path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    args_parser = parser(NAME, __doc__.split("\n\n")[0])
    args_parser.add_argument(
        "--rows", default="1000000", help="comma-separated sizes, e.g. 1000000,5000000"
    )
    args = args_parser.parse_args(argv)
    if args.smoke:
        args.rows, args.runs = "3000", 1
    runs = args.runs or 3
    sizes = [int(n) for n in args.rows.split(",")]
    results: dict[int, list[dict]] = {}
    with workdir(NAME, args.keep) as work:
        for rows in sizes:
            csv_path = recipients_csv(rows)
            size_mb = csv_path.stat().st_size / 2**20
            print(f"{rows:,} rows: {csv_path} ({size_mb:.0f} MB)", flush=True)
            results[rows] = []
            for run in range(runs):
                figures = {}
                for row, measure in (("a", baseline), ("b", campaigns_import)):
                    db_path = work / f"{row}-{rows}-{run}.db"
                    figures[row] = measure(csv_path, db_path)
                    figures[row]["db_mb"] = db_path.stat().st_size / 2**20
                    if row == "b":
                        floor = sqlite_floor(db_path, work / "floor.db")
                    _remove(db_path)
                figures["floor"] = {"seconds": floor}
                figures["b/a"] = figures["b"]["seconds"] / figures["a"]["seconds"]
                figures["floor/a"] = floor / figures["a"]["seconds"]
                results[rows].append(figures)
                print(
                    f"  run {run + 1}/{runs}: a {figures['a']['seconds']:.2f} s "
                    f"{figures['a']['maxrss_mb']:.0f} MB | b {figures['b']['seconds']:.2f} s "
                    f"{figures['b']['maxrss_mb']:.0f} MB | b/a {figures['b/a']:.2f} | "
                    f"SQLite floor {figures['floor']['seconds']:.2f} s",
                    flush=True,
                )

    table, summary, goals = [], {}, []
    for rows in sizes:
        runs_of = results[rows]

        def med(row: str, key: str, runs_of=runs_of) -> float:
            return median(r[row][key] for r in runs_of)

        ratio = median(r["b/a"] for r in runs_of)
        floor_ratio = median(r["floor/a"] for r in runs_of)
        summary[str(rows)] = {
            "a": {k: med("a", k) for k in runs_of[0]["a"]},
            "b": {k: med("b", k) for k in runs_of[0]["b"]},
            "floor": {"seconds": med("floor", "seconds")},
            "b/a": ratio,
            "floor/a": floor_ratio,
        }
        for row, label in (("a", "(a) read_csv + to_sql"), ("b", "(b) campaigns import")):
            table.append(
                [
                    label,
                    rows,
                    med(row, "seconds"),
                    spread([r[row]["seconds"] for r in runs_of]),
                    med(row, "cpu_s"),
                    med(row, "maxrss_mb"),
                    med(row, "db_mb"),
                    f"{ratio:.2f}" if row == "b" else "",
                ]
            )
        floor_seconds = [r["floor"]["seconds"] for r in runs_of]
        table.append(
            [
                "SQLite floor: (b)'s rows copied in C",
                rows,
                median(floor_seconds),
                spread(floor_seconds),
                "",
                "",
                "",
                f"floor/a {floor_ratio:.2f}",
            ]
        )
        goals.append(goal(f"{rows:,} rows: b/a time", ratio, "<=", 1.0))
        goals.append(goal(f"{rows:,} rows: peak RSS of b, MB", med("b", "maxrss_mb"), "<=", 300))
        b = summary[str(rows)]["b"]
        print(f"{rows:,} rows: accepted {b['accepted']}, rejected {b['rejected']}")
    if len(sizes) > 1:
        small, large = min(sizes), max(sizes)
        growth = summary[str(large)]["b"]["maxrss_mb"] / summary[str(small)]["b"]["maxrss_mb"]
        goals.append(goal(f"RSS({large:,}) / RSS({small:,}) of b", growth, "<=", 1.10))
    print_table(
        f"import: median of {runs} run(s)",
        ["row", "rows", "seconds", "runs min–max", "CPU s", "peak RSS MB", "DB MB", "b/a"],
        table,
    )
    print_goals(goals)
    write_results(
        NAME,
        args,
        {
            "params": {"rows": sizes, "runs": runs, "csv_version": VERSION},
            "rows": summary,
            "goals": goals,
            "runs": {str(k): v for k, v in results.items()},
            "notes": [
                "Times are wall seconds of the child process, start-up included; RSS is the "
                "child's ru_maxrss.",
                "The baseline keeps every cell as text (dtype=str) with pandas' default engine.",
            ],
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
