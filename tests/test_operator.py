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
