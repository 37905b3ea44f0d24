"""What a first-time operator reads: times in one zone, reasons in both languages (issue 16)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from campaigns.cli import cli
from campaigns.reasons import REASONS
from campaigns.schedule import SHANGHAI


def _run(db_url: str, *args: str):
    return CliRunner().invoke(cli, ["--db", db_url, *args], catch_exceptions=False)


def test_suppress_list_shows_asia_shanghai_like_every_other_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    before = datetime.now(SHANGHAI).replace(second=0, microsecond=0, tzinfo=None)
    assert _run(url, "suppress", "add", "13800000001").exit_code == 0
    listed = _run(url, "suppress", "list").output
    found = re.search(r"13800000001  (\d{4}-\d\d-\d\d \d\d:\d\d) Asia/Shanghai  ", listed)
    assert found, listed
    shown = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M")
    assert before <= shown <= before + timedelta(minutes=1)
    assert "UTC" not in listed


def test_every_reject_reason_is_explained_in_english_and_chinese() -> None:
    for code, text in REASONS.items():
        assert re.search(r"[A-Za-z]{3}", text), code
        assert re.search(r"\([^()]*[\u4e00-\u9fff][^()]*\)$", text), code


def test_a_missing_or_wrong_option_exits_1_like_every_input_mistake(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    runner = CliRunner()
    for args in (
        ["--db", url, "report", "spring"],  # --output is required
        ["--db", url, "--read-timeout", "soon", "list"],
        ["--db", url, "suppress", "add"],
        ["--db", url, "sendd", "spring"],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, (args, result.output)
        assert "Error:" in result.output


def test_the_import_summary_names_the_phone_column_it_chose(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    source = tmp_path / "in.csv"
    source.write_text("姓名,联系手机\n张三,13800000001\n", encoding="utf-8")
    shown = _run(url, "import", str(source), "-c", "c", "-m", "【店】{姓名}您好", "--dry-run")
    assert "  phone column  联系手机\n" in shown.output
    as_json = _run(url, "import", str(source), "-c", "c", "-m", "【店】{姓名}您好", "--json")
    assert '"phone_column": "联系手机"' in as_json.output


def test_a_header_holding_a_phone_word_is_found_and_two_such_are_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    two = tmp_path / "two.csv"
    two.write_text("客户手机,紧急联系电话\n13800000001,13800000002\n", encoding="utf-8")
    refused = _run(url, "import", str(two), "-c", "c", "-m", "【店】您好", "--dry-run")
    assert refused.exit_code == 1
    assert (
        'choose one with --phone-column "客户手机" or --phone-column "紧急联系电话"'
        in refused.output
    )
    none = tmp_path / "none.csv"
    none.write_text("姓名,订单\n张三,A1\n", encoding="utf-8")
    refused = _run(url, "import", str(none), "-c", "c", "-m", "【店】您好", "--dry-run")
    assert refused.output.strip() == (
        "error: none.csv: no phone column found; columns: 姓名, 订单; "
        'name it with --phone-column "HEADER" (that column\'s header, as in row 1)'
    )
