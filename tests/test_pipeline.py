"""The whole pipeline through the CLI against a real sandbox over loopback HTTP."""

from __future__ import annotations

import pandas as pd
import pytest
from openpyxl import load_workbook

from campaigns.store.models import STATES
from tests.support.recipients import (
    APP_SECRET,
    ledger_counts,
    status_json,
    valid_phones,
    write_csv,
)

MESSAGE = "【榛子测试】{姓名}您好,您的订单已发货。"


@pytest.fixture
def db_url(any_db_url: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_db_url


def imported(run, tmp_path, phones, campaign="spring"):
    path = write_csv(tmp_path / "list.csv", phones)
    result = run("import", str(path), "--campaign", campaign, "--message", MESSAGE)
    assert result.exit_code == 0, result.output
    return result


def test_clean_campaign_end_to_end(run, sandbox, tmp_path):
    phones = valid_phones(40) + ["010-12345678", "", valid_phones(1)[0]]
    result = imported(run, tmp_path, phones)
    assert "accepted  40" in result.output
    assert "rejected  3" in result.output

    sent = run("send", "spring", "--concurrency", "4")
    assert sent.exit_code == 0, sent.output
    counts = ledger_counts(sandbox)
    assert set(counts) == set(valid_phones(40))
    assert set(counts.values()) == {1}
    by_number = {e["number"]: e["message"] for e in sandbox.ledger_entries()}
    assert by_number[valid_phones(1)[0]] == "【榛子测试】客户0您好,您的订单已发货。"

    status = status_json(run, "spring")
    assert status["total"] == 43
    assert status["by_state"]["sent"] == 40
    assert status["by_state"]["invalid"] == 3

    for _ in range(50):  # deliveries become final ~0.2 s after acceptance
        assert run("reconcile", "spring").exit_code == 0
        if status_json(run, "spring")["by_state"]["sent"] == 0:
            break
    final = status_json(run, "spring")["by_state"]
    assert final["delivered"] + final["undelivered"] == 40
    # Every state is present (0 when empty), the seven first among them.
    assert set(final) == set(STATES)
    assert {"invalid", "pending", "sending", "sent", "failed", "delivered", "undelivered"} <= set(
        final
    )


def test_report_has_one_row_per_recipient_in_csv_and_xlsx(run, sandbox, tmp_path):
    imported(run, tmp_path, valid_phones(5) + ["12345"])
    assert run("send", "spring").exit_code == 0
    csv_path, xlsx_path = tmp_path / "r.csv", tmp_path / "r.xlsx"
    assert run("report", "spring", "--output", str(csv_path)).exit_code == 0
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(csv_path, dtype=str, encoding="utf-8-sig")
    assert len(table) == 6
    assert table["姓名"].tolist()[0] == "客户0"
    assert table.loc[table["state"] == "invalid", "reason"].tolist() == ["wrong_length"]
    sent_ids = set(table.loc[table["state"] == "sent", "messageId"])
    assert sent_ids == {e["messageId"] for e in sandbox.ledger_entries()}

    assert run("report", "spring", "--output", str(xlsx_path)).exit_code == 0
    sheet = load_workbook(xlsx_path)["Recipients"]
    header = [cell.value for cell in sheet[1]]
    phone_cells = [row[header.index("phone")] for row in sheet.iter_rows(min_row=2)]
    assert all(cell.data_type == "s" for cell in phone_cells)
    assert sheet.max_row == 7


def test_faults_still_deliver_each_recipient_exactly_once(run, sandbox, tmp_path):
    sandbox.config.fail_1000 = 0.05
    sandbox.config.fail_5xx = 0.05
    sandbox.config.drop_after_accept = 0.05
    imported(run, tmp_path, valid_phones(200))
    result = run("send", "spring", "--concurrency", "8")
    assert result.exit_code == 0, result.output
    counts = ledger_counts(sandbox)
    assert len(counts) == 200
    assert max(counts.values()) == 1
    by_state = status_json(run, "spring")["by_state"]
    assert by_state["sent"] == 200
    assert by_state["sending"] == 0


def test_balance_exhaustion_stops_without_failing_anyone_and_resumes(run, sandbox, tmp_path):
    sandbox.set_balance(25)
    imported(run, tmp_path, valid_phones(60))
    stopped = run("send", "spring", "--concurrency", "4", "--allow-partial")
    assert stopped.exit_code == 2
    assert "108" in stopped.output and "短信余额不足" in stopped.output
    assert "campaigns send spring" in stopped.output
    by_state = status_json(run, "spring")["by_state"]
    assert by_state["failed"] == 0
    assert by_state["sending"] == 0
    assert by_state["sent"] == 25
    assert by_state["pending"] == 35
    status = run("status", "spring")
    assert "top up" in status.output

    sandbox.set_balance(1000)
    resumed = run("send", "spring")
    assert resumed.exit_code == 0, resumed.output
    counts = ledger_counts(sandbox)
    assert len(counts) == 60 and max(counts.values()) == 1


def test_bad_credentials_fail_clearly_without_showing_the_secret(run, tmp_path):
    imported(run, tmp_path, valid_phones(3))
    wrong = "Wrong-Secret-1234"
    for args in (["send", "spring"], ["balance"]):
        result = run(*args, secret=wrong)
        assert result.exit_code == 2
        assert "110" in result.output and "AppSecret" in result.output
        assert wrong not in result.output and APP_SECRET not in result.output
        assert "Traceback" not in result.output
    assert status_json(run, "spring")["by_state"]["pending"] == 3


def test_commands_that_do_not_talk_to_the_provider_need_no_credentials(sandbox, db_url, tmp_path):
    from click.testing import CliRunner

    from campaigns.cli import cli

    path = write_csv(tmp_path / "list.csv", valid_phones(2))
    runner = CliRunner(env={"ZHENZI_APP_ID": None, "ZHENZI_APP_SECRET": None})
    base = ["--db", db_url]
    assert runner.invoke(cli, [*base, "import", str(path), "-c", "x", "-m", MESSAGE]).exit_code == 0
    assert runner.invoke(cli, [*base, "status", "x"]).exit_code == 0
    assert runner.invoke(cli, [*base, "report", "x", "-o", str(tmp_path / "x.csv")]).exit_code == 0
    needs = runner.invoke(cli, [*base, "send", "x"])
    assert needs.exit_code == 1
    assert "ZHENZI_APP_SECRET" in needs.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["status", "nope"], "no campaign named 'nope'"),
        (["report", "nope", "-o", "x.txt"], "no campaign named 'nope'"),
        (["import", "missing.csv", "-c", "a", "-m", "x"], "missing.csv"),
    ],
)
def test_user_mistakes_are_one_line_errors(run, args, expected):
    result = run(*args)
    assert result.exit_code == 1
    assert expected in result.output
    assert "Traceback" not in result.output


def test_unknown_placeholder_is_refused_before_anything_is_stored(run, tmp_path):
    path = write_csv(tmp_path / "list.csv", valid_phones(2))
    result = run("import", str(path), "-c", "x", "-m", "【店】{nickname}您好")
    assert result.exit_code == 1
    assert "nickname" in result.output and "姓名" in result.output
    assert "no campaign named 'x'" in run("status", "x").output
