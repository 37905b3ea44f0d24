"""Reports streamed from the database: chunking changes nothing, the sheet limit splits exactly,
summaries equal what the rows say, no text turns into a formula, on SQLite and PostgreSQL.

Campaigns are real: imported through the API into a real database, then given the states a
finished send leaves (SQL, as the benchmark does), so no sandbox round trip is needed.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta
from html import escape
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import create_engine, select, update

from campaigns import api
from campaigns.cli import cli
from campaigns.config import Settings
from campaigns.errors import UserError
from campaigns.reports import ReportData, StoredCampaign, write_report, xlsx
from campaigns.reports.carriers import carriers, provinces
from campaigns.reports.rows import Rows
from campaigns.reports.summary import scope_of, summarise
from campaigns.store.models import Message
from campaigns.store.report_queries import snapshot

TEMPLATE = "【榛子测试】{姓名}您好,订单{订单号}已发货"
HOSTILE_HEADERS = ['=HYPERLINK("http://evil.example","x")', "+SUM(1,2)", "@cmd", "-2+3"]
START = datetime(2026, 11, 11, 1, 0, 0, 250_000)  # UTC, with a fraction: 09:00:00 in Shanghai
# Per row modulo 10: (state, seconds after START it was sent, seconds to its receipt).
OUTCOMES = {
    0: ("delivered", 0, 3), 1: ("delivered", 1, 0.9), 2: ("undelivered", 2, 40),
    3: ("failed", None, None), 4: ("sent", 7, None), 5: ("delivered", 65, 1.5),
    6: ("delivered", 66, 700), 7: ("pending", None, None), 8: ("delivered", 130, 2),
    9: ("undelivered", 131, 5),
}  # fmt: skip


def phone(i: int) -> str:
    return f"{('138', '186', '133', '170', '192')[i % 5]}{(i * 7919 + 1234) % 10**8:08d}"


def recipients_csv(folder: Path, count: int, headers: list[str] | None = None) -> Path:
    extra = headers or []
    lines = [
        ",".join(
            ["手机号", "姓名", "订单号", *(f'"{h.replace(chr(34), chr(34) * 2)}"' for h in extra)]
        )
    ]
    for i in range(count):
        number = "12345" if i % 17 == 16 else phone(i)  # rejected: wrong length
        cells = [number, f"客户{i}" if i % 11 else "=1+2", f"DD{i:05d}", *(f"@v{i}" for _ in extra)]
        lines.append(",".join(cells))
    path = folder / "客户.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def finish_send(db_url: str) -> None:
    """Give the accepted messages the states, times and receipts a send and reconcile leave."""
    engine = create_engine(db_url)
    with engine.begin() as connection:
        ids = connection.execute(
            select(Message.id).where(Message.state == "pending").order_by(Message.id)
        ).scalars()
        for number, pk in enumerate(list(ids)):
            state, sent, receipt = OUTCOMES[number % 10]
            sent_at = START + timedelta(seconds=sent) if sent is not None else None
            values = {
                "state": state,
                "attempts": 0 if state == "pending" else 1,
                "message_id": f"m-{pk}" if sent_at else None,
                "sent_at": sent_at,
                "final_at": sent_at + timedelta(seconds=receipt) if receipt is not None else None,
                "error_code": 109 if state == "failed" else None,
                "error_text": "UNDELIV 用户停机/空号" if state == "undelivered" else None,
            }
            connection.execute(update(Message).where(Message.id == pk).values(**values))
    engine.dispose()


def make_campaign(folder: Path, db_url: str, count: int, headers: list[str] | None = None):
    settings = Settings(db_url=db_url)
    source = recipients_csv(folder, count, headers)
    api.import_file(settings, source, campaign="春季", message=TEMPLATE)
    finish_send(db_url)
    return settings


@pytest.fixture(scope="module")
def campaign(tmp_path_factory) -> Settings:
    folder = tmp_path_factory.mktemp("campaign")
    return make_campaign(folder, f"sqlite:///{folder / 'c.db'}", 230)


def read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def html_text(path: Path) -> str:
    return re.sub(r"generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "", path.read_text("utf-8"))


def sheet_values(path: Path) -> dict[str, list[tuple]]:
    book = load_workbook(path)
    return {
        name: [
            row
            for row in book[name].iter_rows(values_only=True)
            if row[0] != "report generated 报表生成"
        ]
        for name in book.sheetnames
    }


# -- chunking changes nothing ----


def test_rows_in_chunks_of_seven_equal_rows_in_one_chunk(campaign, tmp_path, monkeypatch):
    made = {}
    for chunk in (7, 1_000_000):
        monkeypatch.setattr("campaigns.reports.rows.CHUNK_ROWS", chunk)
        for suffix in (".csv", ".xlsx", ".html"):
            path = tmp_path / f"{chunk}{suffix}"
            assert api.report(campaign, "春季", path) == 230
            made[chunk, suffix] = path
    assert read_csv(made[7, ".csv"]) == read_csv(made[1_000_000, ".csv"])
    assert sheet_values(made[7, ".xlsx"]) == sheet_values(made[1_000_000, ".xlsx"])
    assert html_text(made[7, ".html"]) == html_text(made[1_000_000, ".html"])


def test_streamed_rows_are_the_campaign_in_input_order(campaign, tmp_path, monkeypatch):
    monkeypatch.setattr("campaigns.reports.rows.CHUNK_ROWS", 9)
    path = tmp_path / "r.csv"
    api.report(campaign, "春季", path)
    header, *rows = read_csv(path)
    assert header[:6] == ["row", "phone", "carrier", "province", "姓名", "订单号"]
    assert header[-1] == "file" and {row[-1] for row in rows} == {"客户.csv"}
    assert [int(row[0]) for row in rows] == list(range(2, 232))
    names = [row[4] for row in rows]
    assert names[0] == "'=1+2" and names[1] == "客户1"  # the data cell neutralised
    invalid = [row for row in rows if row[header.index("state")] == "invalid"]
    assert [row[1] for row in invalid] == ["12345"] * (230 // 17)
    first = rows[0]
    assert first[1] == phone(0) and first[2:4] == ["中国移动", "北京"]
    assert first[header.index("sent")] == "2026-11-11 09:00:00"  # 01:00:00.25 UTC
    assert first[header.index("delivered/undelivered")] == "2026-11-11 09:00:03"


# -- the summary equals what the rows say ----


def test_summary_counts_equal_the_rows(campaign, tmp_path):
    status = api.status(campaign, "春季")
    path = tmp_path / "r.csv"
    api.report(campaign, "春季", path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    store_engine = create_engine(campaign.db_url)
    with snapshot(store_engine) as connection:
        rows = Rows(connection, 1, None)
        data = ReportData(None, status, TEMPLATE)
        summary = summarise(data, connection, 1, rows.count, scope_of(None, False))
    store_engine.dispose()

    assert summary.by_state == {k: int(v) for k, v in status.by_state.items()}
    accepted_rows = 230 - 230 // 17  # every 17th phone is rejected at import
    for state in ("delivered", "undelivered", "failed", "sent", "pending"):
        made = sum(OUTCOMES[n % 10][0] == state for n in range(accepted_rows))
        assert summary.by_state[state] == made, state
    assert summary.by_state["invalid"] == 230 // 17
    assert (
        summary.by_state
        == table["state"].value_counts().reindex(summary.by_state, fill_value=0).to_dict()
    )
    charged = table["state"].isin(["sent", "delivered", "undelivered"])
    assert summary.segments_used == table.loc[charged, "segments"].astype(int).sum()
    assert summary.receipts == [
        ("UNDELIV 用户停机/空号", int((table["state"] == "undelivered").sum()))
    ]
    accepted = table[table["state"] != "invalid"]
    expected = pd.crosstab(carriers(accepted["phone"]), accepted["state"]).sum(axis=1)
    assert summary.by_carrier["messages"].to_dict() == expected[expected > 0].to_dict()
    delivered = pd.crosstab(provinces(accepted["phone"]), accepted["state"])["delivered"]
    assert summary.by_province["delivered"].to_dict() == delivered.to_dict()

    sent = pd.to_datetime(table["sent"].replace("", None)).dropna()
    assert summary.send_bucket == "5s"  # 131 s of sending: the finest bucket under 120 bars
    assert int(summary.send_rate.to_numpy().sum()) == len(
        sent[table["state"].isin(["sent", "delivered", "undelivered"])]
    )
    assert summary.send_rate.index[0] == pd.Timestamp("2026-11-11 09:00:00")
    final = table[table["state"].isin(["delivered", "undelivered"])]
    seconds = (
        pd.to_datetime(final["delivered/undelivered"]) - pd.to_datetime(final["sent"])
    ).dt.total_seconds()
    assert summary.latency_quantiles == pytest.approx(
        tuple(seconds.clip(lower=0).quantile([0.5, 0.9]))
    )
    assert int(summary.latency.to_numpy().sum()) == len(final)
    assert summary.latency.loc["10–30m", "delivered"] == (seconds >= 600).sum()


# -- Excel's row limit, with a small one ----


@pytest.mark.parametrize("rows", [4, 5, 6, 10, 11])
def test_recipients_continue_on_new_sheets_at_the_row_limit(tmp_path, monkeypatch, rows):
    """rows_per_sheet 5 stands for 1,048,575; chunks of 3 cut across the sheet boundaries."""
    monkeypatch.setattr("campaigns.reports.rows.CHUNK_ROWS", 3)
    settings = make_campaign(tmp_path, f"sqlite:///{tmp_path / 'c.db'}", rows)
    status = api.status(settings, "春季")
    engine = create_engine(settings.db_url)
    path = tmp_path / "r.xlsx"
    with snapshot(engine) as connection:
        recipients = Rows(connection, 1, None)
        summary = summarise(ReportData(None, status, "hi"), connection, 1, rows, "all")
        xlsx.write(recipients, summary, path, rows_per_sheet=5)
    engine.dispose()
    book = load_workbook(path)
    sheets = -(-rows // 5)
    assert book.sheetnames == [
        "Summary",
        "Recipients",
        *(f"Recipients {n}" for n in range(2, sheets + 1)),
    ]
    sizes = [book[name].max_row - 1 for name in book.sheetnames[1:]]
    assert sizes == [5] * (sheets - 1) + [rows - 5 * (sheets - 1)]
    numbers = [
        r[0]
        for name in book.sheetnames[1:]
        for r in book[name].iter_rows(min_row=2, values_only=True)
    ]
    assert numbers == list(range(2, rows + 2))
    for name, size in zip(book.sheetnames[1:], sizes, strict=True):
        sheet = book[name]
        assert sheet.freeze_panes == "A2"
        assert (
            sheet.auto_filter.ref == f"A1:{sheet.cell(1, sheet.max_column).column_letter}{size + 1}"
        )
        assert sheet["B2"].data_type == "s"  # phones are text on every sheet


# -- formula text stays text everywhere ----

FORMULA_START = ("=", "+", "-", "@")


def test_no_header_name_template_or_warning_becomes_a_formula(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    url = f"sqlite:///{folder / 'c.db'}"
    settings = Settings(db_url=url)
    source = recipients_csv(folder, 40, HOSTILE_HEADERS)
    hostile_name, hostile_template = "=1+1", "=cmd|'/C calc'!A0 {姓名}"  # no 【签名】: a warning
    api.import_file(settings, source, campaign=hostile_name, message=hostile_template)
    finish_send(url)
    made = {suffix: tmp_path / f"r{suffix}" for suffix in (".csv", ".xlsx", ".html")}
    for path in made.values():
        api.report(settings, hostile_name, path)
    api.report(settings, hostile_name, tmp_path / "rejects.csv", rejects_only=True)
    api.report(settings, hostile_name, tmp_path / "rejects.xlsx", rejects_only=True)

    for path in (made[".csv"], tmp_path / "r.breakdown.csv", tmp_path / "rejects.csv"):
        cells = [cell for row in read_csv(path) for cell in row]
        assert cells and not [c for c in cells if c.startswith(FORMULA_START)], path
    header = read_csv(made[".csv"])[0]
    assert ["'" + h for h in HOSTILE_HEADERS] == [h for h in header if h.startswith("'")]

    for path in (made[".xlsx"], tmp_path / "rejects.xlsx"):
        with zipfile.ZipFile(path) as package:
            for part in package.namelist():
                xml = package.read(part).decode()
                assert "<f>" not in xml and "<f " not in xml, (path, part)
    book = load_workbook(made[".xlsx"])
    titles = [cell.value for cell in book["Recipients"][1]]
    assert all(h in titles for h in HOSTILE_HEADERS)  # the name exactly as the file had it
    assert all(cell.data_type == "s" for cell in book["Recipients"][1])
    facts = {row[0].value: row[1] for row in book["Summary"].iter_rows(max_col=2) if row[0].value}
    assert (facts["campaign 活动"].value, facts["campaign 活动"].data_type) == (hostile_name, "s")
    assert facts["message template 短信模板"].value == hostile_template
    warnings = [
        row[1].value
        for row in book["Summary"].iter_rows(max_col=2)
        if row[0].value == "warning 注意"
    ]
    assert warnings and any("【" in w for w in warnings)
    assert "<script" not in made[".html"].read_text("utf-8")


def test_rejects_file_headers_are_neutralised(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    settings = Settings(db_url=f"sqlite:///{folder / 'c.db'}")
    source = recipients_csv(folder, 40, HOSTILE_HEADERS)
    for suffix in (".csv", ".xlsx"):
        rejects = tmp_path / f"rejects{suffix}"
        api.import_file(
            settings, source, campaign=f"c{suffix}", message=TEMPLATE, rejects_path=rejects
        )
        if suffix == ".csv":
            rows = read_csv(rejects)
            assert ["'" + h for h in HOSTILE_HEADERS] == [h for h in rows[0] if h.startswith("'")]
            assert not [c for row in rows for c in row if c.startswith(FORMULA_START)]
        else:
            with zipfile.ZipFile(rejects) as package:
                xml = package.read("xl/worksheets/sheet1.xml").decode()
            assert "<f>" not in xml and "'=HYPERLINK" in xml and "'@cmd" in xml


FOLDER_VANISHES = """
import shutil, sys
from pathlib import Path
import pandas as pd
from campaigns.errors import UserError
from campaigns.intake.rejects import RejectsFile
folder = Path(sys.argv[1])
folder.mkdir()
try:
    with RejectsFile(folder / "rejects.xlsx", ["phone", "=x"]) as rejects:
        rejects.write(pd.DataFrame({"phone": ["123"], "=x": ["=1"]}))
        shutil.rmtree(folder)
except UserError as exc:
    print(exc)
"""


def test_a_failed_rejects_xlsx_save_is_one_error_and_nothing_ignored(tmp_path):
    """The folder vanishes during the import: one error, and no "Exception ignored" block when
    the interpreter later drops the sheet openpyxl left half-written."""
    folder = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", FOLDER_VANISHES, str(folder)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0
    assert (
        done.stdout.strip() == f"cannot write {folder / 'rejects.xlsx'}: No such file or directory"
    )
    assert done.stderr == ""


# -- the CLI: one message for a missing folder, progress, warnings ----


def cli_run(db_url: str, *args: str):
    return CliRunner().invoke(cli, ["--db", db_url, *args], catch_exceptions=False)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".html"])
def test_report_into_a_missing_folder_is_one_line_in_every_format(campaign, tmp_path, suffix):
    target = tmp_path / "nope" / f"r{suffix}"
    result = cli_run(campaign.db_url, "report", "春季", "--output", str(target))
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: cannot write {target}: the folder {target.parent} does not exist"
    )


def test_rejects_into_a_missing_folder_is_refused_before_the_import(tmp_path):
    source = recipients_csv(tmp_path, 20)
    db_url = f"sqlite:///{tmp_path / 'c.db'}"
    target = tmp_path / "nope" / "rejects.xlsx"
    result = cli_run(
        db_url, "import", str(source), "--campaign", "c", "--message", TEMPLATE,
        "--rejects", str(target),
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: cannot write {target}: the folder {target.parent} does not exist"
    )
    assert "Exception ignored" not in result.output
    assert api.list_campaigns(Settings(db_url=db_url)) == []  # refused before any work


def test_progress_lines_for_large_reports_and_none_with_quiet(campaign, tmp_path, monkeypatch):
    monkeypatch.setattr("campaigns.reports.rows.CHUNK_ROWS", 50)
    monkeypatch.setattr("campaigns.cli.report_cmd.PROGRESS_FROM", 100)
    path = str(tmp_path / "r.csv")
    shown = cli_run(campaign.db_url, "report", "春季", "--output", path).output
    lines = [line for line in shown.splitlines() if line.startswith("report: ")]
    assert lines[0] == "report: 50/230 rows"
    assert re.fullmatch(r"report: 230/230 rows, [\d,]+ rows/s, about 0 s left", lines[-1])
    quiet = cli_run(campaign.db_url, "--quiet", "report", "春季", "--output", path).output
    assert quiet.strip() == f"wrote 230 rows to {path}"
    monkeypatch.setattr("campaigns.cli.report_cmd.PROGRESS_FROM", 231)
    small = cli_run(campaign.db_url, "report", "春季", "--output", path).output
    assert small.strip() == f"wrote 230 rows to {path}"


def test_import_warnings_appear_in_the_xlsx_summary_and_the_html(tmp_path):
    source = recipients_csv(tmp_path, 20)
    db_url = f"sqlite:///{tmp_path / 'c.db'}"
    settings = Settings(db_url=db_url)
    summary = api.import_file(settings, source, campaign="c", message="{姓名}您好")  # no 【签名】
    assert summary.warnings
    api.report(settings, "c", tmp_path / "r.xlsx")
    api.report(settings, "c", tmp_path / "r.html")
    sheet = load_workbook(tmp_path / "r.xlsx")["Summary"]
    shown = [row[1] for row in sheet.iter_rows(values_only=True) if row[0] == "warning 注意"]
    assert shown == summary.warnings
    page = (tmp_path / "r.html").read_text("utf-8")
    assert "注意 · Warnings" in page
    assert all(escape(warning) in page for warning in summary.warnings)


# -- PostgreSQL reads the same report ----


def test_postgresql_and_sqlite_give_the_same_report(tmp_path, pg_url):
    made = {}
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'c.db'}"), ("postgresql", pg_url)):
        folder = tmp_path / name
        folder.mkdir()
        settings = make_campaign(folder, url, 60, ["备注"])
        for suffix in (".csv", ".html"):
            made[name, suffix] = folder / f"r{suffix}"
            assert api.report(settings, "春季", made[name, suffix]) == 60
        made[name, "retry"] = folder / "retry.csv"
        api.report(settings, "春季", made[name, "retry"], ["undelivered", "failed"], mask=True)
    for kind in (".csv", "retry"):
        queued = read_csv(made["sqlite", kind])[0].index("queued")  # when each import ran

        def without_queued(rows: list[list[str]], at: int = queued) -> list[list[str]]:
            return [row[:at] + row[at + 1 :] for row in rows]

        assert without_queued(read_csv(made["sqlite", kind])) == without_queued(
            read_csv(made["postgresql", kind])
        )
    assert read_csv(made["sqlite", ".csv"])[0][4:7] == ["姓名", "订单号", "备注"]
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"  # created, started: when each import ran
    pages = [
        re.sub(stamp, "", made[name, ".html"].read_text("utf-8"))
        for name in ("sqlite", "postgresql")
    ]
    assert pages[0] == pages[1]


def test_stored_campaign_report_through_the_library(campaign, tmp_path):
    """``StoredCampaign`` is how a library user reports without the CLI."""
    engine = create_engine(campaign.db_url)
    data = ReportData(
        None, api.status(campaign, "春季"), TEMPLATE, campaign=StoredCampaign(engine, 1)
    )
    assert write_report(data, tmp_path / "r.csv", rejects_only=True) == 230 // 17
    with pytest.raises(UserError, match="must end in"):
        write_report(data, tmp_path / "r.txt")
    engine.dispose()
    assert (
        io.StringIO((tmp_path / "r.csv").read_text("utf-8-sig"))
        .readline()
        .startswith("row,phone,姓名")
    )
