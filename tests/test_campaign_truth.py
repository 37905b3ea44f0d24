"""status, list and reports tell the truth about a campaign (issue 16 §4)."""

from __future__ import annotations

import csv
import json

from tests.support.recipients import valid_phones, write_csv

MESSAGE = "【店】{姓名}您好,订单已发货"


def test_a_second_file_is_announced_with_the_new_total_and_reports_name_each_file(
    run, tmp_path
) -> None:
    first = write_csv(tmp_path / "march.csv", valid_phones(3))
    second = write_csv(tmp_path / "april.csv", valid_phones(2, start=3))
    once = run("import", str(first), "-c", "spring", "-m", MESSAGE).output
    assert "already had" not in once
    added = run("import", str(second), "-c", "spring", "-m", MESSAGE)
    assert added.exit_code == 0, added.output
    assert (
        "  added to campaign 'spring', which already had march.csv: 5 recipients in all\n"
        in added.output
    )
    third = write_csv(tmp_path / "may.csv", valid_phones(1, start=5))
    as_json = json.loads(
        run("import", str(third), "-c", "spring", "-m", MESSAGE, "--dry-run", "--json").output
    )
    assert (as_json["earlier_files"], as_json["campaign_total"]) == (["march.csv", "april.csv"], 6)

    report = tmp_path / "r.csv"
    assert run("report", "spring", "--output", str(report)).exit_code == 0
    with open(report, encoding="utf-8-sig", newline="") as handle:
        header, *rows = csv.reader(handle)
    assert header[-1] == "file"
    assert [(row[0], row[-1]) for row in rows] == [
        ("2", "march.csv"),
        ("2", "april.csv"),
        ("3", "march.csv"),
        ("3", "april.csv"),
        ("4", "march.csv"),
    ]


def test_list_shows_sent_final_and_total_plainly(run, tmp_path) -> None:
    source = write_csv(tmp_path / "l.csv", [*valid_phones(3), "010-12345678"])
    assert run("import", str(source), "-c", "spring", "-m", MESSAGE).exit_code == 0
    assert run("send", "spring").exit_code == 0
    listed = json.loads(run("list", "--json").output)[0]
    # All 3 sent and waiting for receipts: not "done 1/4" (the landline reject counted as done).
    assert (listed["sent"], listed["final"], listed["total"], listed["rejected"]) == (3, 0, 3, 1)
    table = run("list").output
    assert "┃ campaign ┃ state ┃ sent ┃ final ┃ total ┃ rejected ┃" in table
    assert "│ spring   │ done  │    3 │     0 │     3 │        1 │" in table
