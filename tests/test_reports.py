"""Report exports read back from real files: CSV with pandas, XLSX with openpyxl.

One real campaign (import → send → reconcile against the in-process sandbox) feeds the format
tests; a synthetic frame, built column-wise, covers the shapes a sandbox cannot produce cheaply.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from campaigns import api
from campaigns.config import Secret, Settings
from campaigns.errors import UserError
from campaigns.provider.codes import describe
from campaigns.provider.sandbox import Sandbox, SandboxConfig
from campaigns.reports import ReportData, report_table, write_report
from campaigns.reports.carriers import (
    breakdown,
    carrier_of_prefix,
    carriers,
    province_of_prefix,
    provinces,
)
from campaigns.reports.csv_export import breakdown_path
from campaigns.reports.table import input_columns, mask_phones
from campaigns.store import campaign_queries, queries
from campaigns.store.db import Store
from campaigns.store.models import STATES

TEMPLATE = "【榛子测试】{姓名}您好,您的订单{订单号}已发货"
INJECTION = '=HYPERLINK("http://evil.example","点我")'
# (phone as typed, name): known carriers and provinces, formula-looking cells, rejects.
RECIPIENTS = [
    ("13800138000", "张三"),
    ("186 1234 5678", INJECTION),
    ("+86 133-1234-5678", "+SUM(1,2)"),
    ("17012345678", "-李四"),
    ("16512345678", "@王五"),
    ("19212345678", "赵六"),
    ("15912345678", "钱七"),
    ("=1+2", "孙八"),
    ("13800138000", "重复的人"),
    ("010-12345678", "座机"),
] + [(f"1370000{i:04d}", f"客户{i}") for i in range(30)]


@pytest.fixture(scope="module")
def campaign(tmp_path_factory) -> tuple[ReportData, api.CampaignStatus]:
    """A real campaign with delivered, undelivered and rejected rows, fully reconciled."""
    folder = tmp_path_factory.mktemp("campaign")
    lines = ["手机号,姓名,订单号"] + [
        f'"{phone}","{name.replace(chr(34), chr(34) * 2)}",DD{row:04d}'
        for row, (phone, name) in enumerate(RECIPIENTS)
    ]
    source = folder / "客户.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = SandboxConfig(delivery_delay_s=0.05, undelivered_share=0.3, seed=11)
    with Sandbox(config) as sandbox:
        settings = Settings(
            db_url=f"sqlite:///{folder / 'campaigns.db'}",
            api_url=sandbox.url,
            app_id=config.app_id,
            app_secret=Secret(config.app_secret),
        )
        api.import_file(settings, source, campaign="春季", message=TEMPLATE)
        api.send(settings, "春季")
        for _ in range(100):
            api.reconcile(settings, "春季")
            if api.status(settings, "春季").by_state["sent"] == 0:
                break
    status = api.status(settings, "春季")
    store = Store(settings.db_url)
    frame = queries.report_frame(store, campaign_queries.campaign_by_name(store, "春季").id)
    store.close()
    return ReportData(frame=frame, status=status, template=TEMPLATE), status


def synthetic_frame(rows: int, seed: int = 1) -> pd.DataFrame:
    """``queries.report_frame`` look-alike with every state, built column-wise (fast at 1M rows)."""
    rng = np.random.default_rng(seed)
    prefixes = np.array(["138", "139", "150", "186", "131", "133", "189", "177", "170", "192"])
    phone = pd.Series(rng.choice(prefixes, rows)).str.cat(
        pd.Series(rng.integers(0, 10**8, rows)).astype("str").str.zfill(8)
    )
    state = pd.Series(
        rng.choice(
            ["delivered", "undelivered", "failed", "sent", "pending", "invalid"],
            rows,
            p=[0.86, 0.06, 0.02, 0.03, 0.01, 0.02],
        )
    )
    invalid = state == "invalid"
    start = datetime(2026, 11, 11, 1, 0)  # UTC: 09:00 in Shanghai
    sent_at = pd.Series(start + pd.to_timedelta(np.sort(rng.uniform(0, 900, rows)), unit="s"))
    latency = pd.to_timedelta(rng.exponential(4.0, rows), unit="s")
    row = pd.Series(np.arange(2, rows + 2)).astype("str")
    return pd.DataFrame(
        {
            "row_number": np.arange(2, rows + 2),
            "raw_phone": phone.mask(invalid, "12345"),
            "phone": phone.mask(invalid, None),
            "message_id": ("abc-" + row).mask(invalid, None),
            "state": state,
            "reason": pd.Series(None, index=state.index, dtype=object).mask(
                invalid, "wrong_length"
            ),
            "error_code": pd.Series(None, index=state.index, dtype=object).mask(
                state == "failed", 109
            ),
            "error_text": pd.Series(None, index=state.index, dtype=object)
            .mask(state == "undelivered", "UNDELIV 用户停机/空号")
            .mask(invalid, "A mainland mobile number has 11 digits"),
            "attempts": (~invalid).astype("int64"),
            "segments": (~invalid).astype("int64"),
            "content": "",
            "fields": '{"手机号":"' + phone.mask(invalid, "12345") + '","姓名":"客户' + row + '"}',
            "queued_at": pd.Series(start, index=state.index),
            "sent_at": sent_at.where(state.isin(["delivered", "undelivered", "sent"])),
            "final_at": (sent_at + latency).where(state.isin(["delivered", "undelivered"])),
        }
    )


@dataclass
class Status:
    """What the report needs from ``api.CampaignStatus`` (``reports.StatusLike``)."""

    campaign: str
    total: int
    by_state: dict[str, int]
    errors: list[tuple[str, str, int]]
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


def status_of(frame: pd.DataFrame, name: str = "双十一") -> Status:
    """What ``api.status`` would say about ``frame``."""
    counts = frame["state"].value_counts()
    by_state = {state: int(counts.get(state, 0)) for state in STATES}
    return Status(
        campaign=name,
        total=len(frame),
        by_state=by_state,
        errors=[
            ("109", describe(109).meaning, by_state["failed"]),
            ("wrong_length", "A mainland mobile number has 11 digits", by_state["invalid"]),
        ],
        created_at=datetime(2026, 11, 11, 0, 55),
        started_at=datetime(2026, 11, 11, 1, 0),
        finished_at=datetime(2026, 11, 11, 1, 15),
    )


# -- CSV ----


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def test_csv_round_trip_keeps_rows_chinese_and_neutralises_formulas(campaign, tmp_path):
    data, _ = campaign
    path = tmp_path / "报表.csv"
    assert write_report(data, path) == len(RECIPIENTS)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    table = read_csv(path)
    assert table["row"].tolist() == [str(n) for n in range(2, len(RECIPIENTS) + 2)]
    assert "手机号" not in table  # the phone column is the report's own "phone"
    names = table["姓名"].tolist()
    assert names[0] == "张三" and names[-1] == "客户29"
    assert names[1:5] == ["'" + INJECTION, "'+SUM(1,2)", "'-李四", "'@王五"]
    assert table["phone"].tolist()[:3] == ["13800138000", "18612345678", "13312345678"]
    assert table.loc[7, "phone"] == "'=1+2"  # a rejected raw value is neutralised too
    assert table.loc[7, "state"] == "invalid"
    assert table.loc[8, "reason"] == "duplicate" and "row 2" in table.loc[8, "error_text"]
    assert table.loc[0, ["carrier", "province"]].tolist() == ["中国移动", "北京"]
    assert (table.loc[:6, "messageId"] != "").all()


def test_csv_numbers_stay_numbers_and_times_are_shanghai(campaign, tmp_path):
    data, _ = campaign
    path = tmp_path / "r.csv"
    write_report(data, path)
    table = pd.read_csv(path, encoding="utf-8-sig")
    assert table["attempts"].dtype.kind == "i" and table["row"].dtype.kind == "i"
    sent_utc = data.frame.loc[0, "sent_at"]
    assert table.loc[0, "sent"] == (sent_utc + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
    assert pd.isna(table.loc[7, "sent"])  # never sent: an empty cell, not "NaT"


def test_csv_mask_hides_every_phone(campaign, tmp_path):
    data, _ = campaign
    path = tmp_path / "masked.csv"
    write_report(data, path, mask=True)
    table = read_csv(path)
    assert table.loc[0, "phone"] == "138****8000"
    assert table["phone"].str.fullmatch(r"(.{3}\*{4}.{4}|\*{4})").all()
    text = path.read_text(encoding="utf-8-sig")
    assert "13800138000" not in text and "1234 5678" not in text


def test_csv_breakdown_file_beside_the_report(campaign, tmp_path):
    data, status = campaign
    path = tmp_path / "r.csv"
    write_report(data, path)
    both = read_csv(breakdown_path(path))
    carrier = both[both["by"] == "carrier"].set_index("name")
    assert carrier.index[0] == "中国移动"
    assert {"中国联通", "中国电信", "中国广电", "虚拟运营商"} <= set(carrier.index)
    accepted = status.total - status.by_state["invalid"]
    assert carrier["messages"].astype(int).sum() == accepted
    assert set(both.loc[both["by"] == "province", "name"]) >= {"北京", "贵州"}


def test_state_filter_narrows_rows_not_the_summary(campaign, tmp_path):
    data, status = campaign
    retry = ReportData(data.frame, data.status, data.template, states=["undelivered"])
    path = tmp_path / "retry.xlsx"
    rows = write_report(retry, path)
    assert rows == status.by_state["undelivered"] > 0
    book = load_workbook(path)
    assert book["Recipients"].max_row == rows + 1
    assert summary_counts(book["Summary"]) == status.by_state


def test_rejects_only_lists_import_rejects_with_reasons(campaign, tmp_path):
    data, status = campaign
    path = tmp_path / "rejects.csv"
    assert write_report(data, path, rejects_only=True) == status.by_state["invalid"] == 3
    table = read_csv(path)
    assert table.columns.tolist() == ["row", "phone", "姓名", "订单号", "reason", "error_text"]
    assert table["reason"].tolist() == ["not_a_number", "duplicate", "landline"]
    assert table["phone"].tolist() == ["'=1+2", "13800138000", "010-12345678"]


def test_unknown_extension_is_a_user_error(campaign, tmp_path):
    with pytest.raises(UserError, match=r"\.csv, \.xlsx or \.html"):
        write_report(campaign[0], tmp_path / "r.pdf")


# -- XLSX ----


def summary_counts(sheet) -> dict[str, int]:
    """The "Messages by state" rows of the Summary sheet: state name in A, count in C.

    That block comes first; a later block (receipts) may label a row with a state's name, such as
    the real provider's bare status text "failed".
    """
    counts: dict[str, int] = {}
    for row in sheet.iter_rows(values_only=True):
        if row and row[0] in STATES:
            counts.setdefault(row[0], row[2])
    return counts


def summary_value(sheet, label: str):
    return next(row[1] for row in sheet.iter_rows(values_only=True) if row and row[0] == label)


def test_xlsx_summary_equals_status_and_phones_are_text(campaign, tmp_path):
    data, status = campaign
    path = tmp_path / "r.xlsx"
    write_report(data, path)
    book = load_workbook(path)
    assert book.sheetnames == ["Summary", "Recipients"]
    summary = book["Summary"]
    assert summary_counts(summary) == status.by_state
    assert summary_value(summary, "campaign 活动") == "春季"
    assert summary_value(summary, "message template 短信模板") == TEMPLATE
    assert summary_value(summary, "recipients 收件人") == status.total
    delivered, undelivered = status.by_state["delivered"], status.by_state["undelivered"]
    rate = summary_value(summary, "delivery rate 送达率 (delivered ÷ receipts)")
    assert rate == pytest.approx(delivered / (delivered + undelivered))
    codes = {row[0]: row[2] for row in summary.iter_rows(values_only=True) if row}
    for code, _, count in status.errors:
        assert codes[code] == count
    assert codes["中国移动"] >= 1  # carrier table

    sheet = book["Recipients"]
    header = [cell.value for cell in sheet[1]]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(header)).column_letter}{sheet.max_row}"
    assert sheet.max_row == len(RECIPIENTS) + 1
    body = list(sheet.iter_rows(min_row=2))
    for column in ("phone", "messageId"):
        cells = [row[header.index(column)] for row in body if row[header.index(column)].value]
        assert cells and all(cell.data_type == "s" for cell in cells)
    name = body[1][header.index("姓名")]
    assert (name.value, name.data_type) == (INJECTION, "s")  # text, not a formula
    assert body[7][header.index("phone")].data_type == "s"
    assert isinstance(body[0][header.index("sent")].value, datetime)
    assert body[0][header.index("attempts")].data_type == "n"
    assert sheet.column_dimensions["A"].width >= 6


def test_xlsx_masked(campaign, tmp_path):
    path = tmp_path / "masked.xlsx"
    write_report(campaign[0], path, mask=True)
    sheet = load_workbook(path)["Recipients"]
    phones = [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert phones[0] == "138****8000"
    assert not any(re.fullmatch(r"1\d{10}", phone or "") for phone in phones)


# -- the table ----


def test_report_table_on_synthetic_rows_matches_the_frame():
    frame = synthetic_frame(3000)
    table = report_table(frame)
    assert table["row"].tolist() == frame["row_number"].tolist()
    assert table.columns[:5].tolist() == ["row", "phone", "carrier", "province", "姓名"]
    assert table.columns[-1] == "file"
    failed = table[table["state"] == "failed"]
    assert (failed["error_code"] == 109).all()
    assert (failed["error_text"] == describe(109).meaning).all()
    assert table["sent"].dropna().dt.hour.eq(9).all()  # 01:xx UTC is 09:xx in Shanghai
    invalid = table["state"] == "invalid"
    assert (table.loc[invalid, "carrier"] == "").all() and (
        table.loc[~invalid, "carrier"] != ""
    ).all()


def test_input_columns_keep_text_as_typed_and_union_keys():
    fields = pd.Series(
        [
            json.dumps({"姓名": "甲", "下单时间": "2026-11-11 09:00:00", "金额": "12.50"}),
            json.dumps({"姓名": "乙", "下单时间": "2026/11/11", "备注": "=1"}, ensure_ascii=False),
        ]
    )
    table = input_columns(fields)
    assert table["下单时间"].tolist() == ["2026-11-11 09:00:00", "2026/11/11"]
    assert table["金额"].tolist() == ["12.50", ""]
    assert table["备注"].tolist() == ["", "=1"]


def test_mask_phones():
    phones = pd.Series(["13800138000", "12345", "", "+86 138 0013"], dtype="str")
    assert mask_phones(phones).tolist() == ["138****8000", "****", "", "+86****0013"]


# -- carriers and provinces ----


@pytest.mark.parametrize(
    ("phone", "carrier", "province"),
    [
        ("13800138000", "中国移动", "北京"),
        ("18612345678", "中国联通", "北京"),
        ("13312345678", "中国电信", "贵州"),
        ("15912345678", "中国移动", "云南"),
        ("19212345678", "中国广电", "未知"),
        ("17012345678", "虚拟运营商", "未知"),
        ("17112345678", "虚拟运营商", "未知"),
        ("16212345678", "虚拟运营商", "未知"),
        ("16512345678", "虚拟运营商", "未知"),
        ("16712345678", "虚拟运营商", "未知"),
        ("+447911123456", "境外", "境外"),
    ],
)
def test_carrier_and_province_of_known_numbers(phone, carrier, province):
    phones = pd.Series([phone, None], dtype="str")
    assert carriers(phones).tolist() == [carrier, ""]
    assert provinces(phones).tolist() == [province, ""]


def test_lookups_run_once_per_prefix():
    carrier_of_prefix.cache_clear()
    province_of_prefix.cache_clear()
    phones = synthetic_frame(50_000)["phone"]
    carriers(phones), provinces(phones)
    distinct = phones.dropna().str.slice(0, 7).nunique()
    assert province_of_prefix.cache_info().misses == distinct
    assert carrier_of_prefix.cache_info().misses == phones.dropna().str.slice(0, 4).nunique()


def test_breakdown_rates():
    groups = pd.Series(["中国移动"] * 4 + ["中国联通"] * 3 + [""])
    states = pd.Series(
        ["delivered", "delivered", "undelivered", "sent"]
        + ["delivered", "failed", "undelivered"]
        + ["invalid"]
    )
    table = breakdown(groups, states, ("中国移动", "中国联通"))
    assert table.index.tolist() == ["中国移动", "中国联通"]  # rejected rows have no carrier
    mobile, unicom = table.loc["中国移动"], table.loc["中国联通"]
    assert (mobile["messages"], mobile["awaiting"]) == (4, 1)
    assert mobile["delivery_rate"] == pytest.approx(2 / 3)
    assert mobile["failure_rate"] == pytest.approx(1 / 4)
    assert unicom["delivery_rate"] == pytest.approx(1 / 2)
    assert unicom["failure_rate"] == pytest.approx(2 / 3)


# -- edges ----


@pytest.mark.parametrize("rows", [0, 5])
@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".html"])
def test_campaign_with_nothing_accepted(rows, suffix, tmp_path):
    frame = synthetic_frame(5).iloc[:rows]
    frame = frame.assign(state="invalid", phone=None, message_id=None, error_code=None)
    frame = frame.assign(sent_at=pd.NaT, final_at=pd.NaT)
    assert write_report(ReportData(frame, status_of(frame), "hi"), tmp_path / f"r{suffix}") == rows


def test_xlsx_splits_at_the_sheet_row_limit(monkeypatch, tmp_path):
    monkeypatch.setattr("campaigns.reports.xlsx.ROWS_PER_SHEET", 10)
    frame = synthetic_frame(25)
    write_report(ReportData(frame, status_of(frame), "hi"), tmp_path / "r.xlsx")
    book = load_workbook(tmp_path / "r.xlsx")
    assert book.sheetnames == ["Summary", "Recipients", "Recipients 2", "Recipients 3"]
    rows = [
        row[0] for name in book.sheetnames[1:] for row in book[name].iter_rows(2, values_only=True)
    ]
    assert rows == frame["row_number"].tolist()
    assert [book[name].max_row for name in book.sheetnames[1:]] == [11, 11, 6]


def test_mask_covers_phone_columns_of_every_import_and_xlsx_drops_control_characters(tmp_path):
    frame = synthetic_frame(4)
    frame["raw_phone"] = frame["phone"]
    frame["fields"] = [
        json.dumps({"手机号": frame.loc[0, "phone"], "姓名": "甲\x07"}),
        json.dumps({"手机号": frame.loc[1, "phone"], "姓名": "乙"}),
        json.dumps({"电话": frame.loc[2, "phone"], "姓名": "丙"}),
        json.dumps({"电话": frame.loc[3, "phone"], "姓名": "丁"}),
    ]
    table = report_table(frame, mask=True)
    assert "手机号" not in table and "电话" not in table
    write_report(ReportData(frame, status_of(frame), "hi"), tmp_path / "r.xlsx", mask=True)
    sheet = load_workbook(tmp_path / "r.xlsx")["Recipients"]
    header = [cell.value for cell in sheet[1]]
    assert sheet.cell(2, header.index("姓名") + 1).value == "甲"


def test_xlsx_summary_keeps_formula_looking_text_as_text(tmp_path):
    frame = synthetic_frame(20)
    frame.loc[0, ["state", "error_text"]] = ["undelivered", "#N/A"]
    status = status_of(frame, name="=1+1")
    write_report(ReportData(frame, status, INJECTION), tmp_path / "r.xlsx")
    sheet = load_workbook(tmp_path / "r.xlsx")["Summary"]
    cells = {row[0].value: row[1] for row in sheet.iter_rows(max_col=2) if row[0].value}
    for label, text in (("campaign 活动", "=1+1"), ("message template 短信模板", INJECTION)):
        assert (cells[label].value, cells[label].data_type) == (text, "s")
    receipts = [row[0] for row in sheet.iter_rows(max_col=1) if row[0].value == "#N/A"]
    assert receipts and receipts[0].data_type == "s"


def test_every_state_has_a_label_and_a_colour():
    from campaigns.reports.html import STATE_COLOURS
    from campaigns.reports.summary import STATE_LABELS
    from campaigns.store.models import STATES

    assert set(STATE_LABELS) == set(STATES) == set(STATE_COLOURS)
