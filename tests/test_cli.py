"""The terminal: exact tables (snapshots), JSON for scripts, help with examples, import options."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest
from click.testing import CliRunner

from campaigns.cli import cli
from campaigns.store import db
from tests.conftest import ledger_counts, status_json, write_csv

MESSAGE = "【店】{姓名}您好,订单已发货"
PHONES = ["13800000001", "13800000002", "010-12345678", "13800000001"]

STATUS_SNAPSHOT = """\
campaign s
┏━━━━━━━━━━━━━┳━━━━━━━━━━┓
┃ state       ┃ messages ┃
┡━━━━━━━━━━━━━╇━━━━━━━━━━┩
│ invalid     │        2 │
│ suppressed  │        0 │
│ pending     │        2 │
│ deferred    │        0 │
│ sending     │        0 │
│ sent        │        0 │
│ failed      │        0 │
│ delivered   │        0 │
│ undelivered │        0 │
│ expired     │        0 │
│ cancelled   │        0 │
├─────────────┼──────────┤
│ total       │        4 │
└─────────────┴──────────┘
"""


@pytest.fixture
def imported(run, tmp_path):
    path = write_csv(tmp_path / "l.csv", PHONES)
    result = run("import", str(path), "-c", "s", "-m", MESSAGE)
    assert result.exit_code == 0, result.output
    return path


def test_status_table_snapshot(run, imported):
    output = run("status", "s").output
    assert output.startswith(STATUS_SNAPSHOT)
    assert "duplicate" in output and "landline" in output


def test_list_as_table_and_json(run, imported):
    listed = json.loads(run("list", "--json").output)
    figures = [(c["campaign"], c["state"], c["sent"], c["final"], c["total"]) for c in listed]
    assert figures == [("s", "ready", 0, 0, 2)]  # 2 of 4 rows rejected: not to send, not done
    assert listed[0]["rejected"] == 2
    table = run("list").output
    assert "│ s        │ ready │    0 │     0 │     2 │        2 │" in table


def test_import_dry_run_json_stores_nothing(run, tmp_path):
    path = write_csv(tmp_path / "l.csv", PHONES)
    result = run("import", str(path), "-c", "d", "-m", MESSAGE, "--dry-run", "--json")
    summary = json.loads(result.output)
    assert summary["dry_run"] and summary["accepted"] == 2
    assert summary["rejected"] == {"landline": 1, "duplicate": 1}
    assert summary["sample"][0] == "【店】客户0您好,订单已发货"
    assert "no campaign named 'd'" in run("status", "d").output


def test_import_twice_adds_nothing_and_says_so(run, imported):
    again = run("import", str(imported), "-c", "s", "-m", MESSAGE)
    assert again.exit_code == 0 and "already imported" in again.output
    assert status_json(run, "s")["total"] == 4


def test_rejects_file_lists_each_rejected_row_with_its_reason(run, tmp_path):
    path = write_csv(tmp_path / "l.csv", PHONES)
    rejects = tmp_path / "rejects.csv"
    assert (
        run("import", str(path), "-c", "r", "-m", MESSAGE, "--rejects", str(rejects)).exit_code == 0
    )
    table = pd.read_csv(rejects, dtype=str, encoding="utf-8-sig")
    assert table["row"].tolist() == ["4", "5"]
    assert "landline" in table["reason"][0] and "row 2" in table["reason"][1]


def test_warnings_are_printed_before_anything_is_sent(run, tmp_path):
    path = write_csv(tmp_path / "l.csv", ["13800000001"])
    result = run("import", str(path), "-c", "w", "-m", "你好", "--marketing")
    assert "signature" in result.output and "greeting" in result.output


def test_v2_template_campaign_sends_template_params(run, sandbox, tmp_path):
    path = tmp_path / "otp.csv"
    path.write_text("手机号,验证码\n13800000001,4321\n13800000002,8765\n", encoding="utf-8")
    imported = run(
        "import", str(path), "-c", "otp", "--template-id", "1001", "--params", "{验证码},5"
    )
    assert imported.exit_code == 0, imported.output
    assert run("send", "otp").exit_code == 0
    messages = {e["number"]: e["message"] for e in sandbox.ledger_entries()}
    assert messages["13800000001"] == "【榛子科技】您的验证码为4321,5分钟内有效。"
    bad = tmp_path / "bad.csv"
    bad.write_text("手机号,验证码\n13800000003,1\n", encoding="utf-8")
    assert (
        run(
            "import", str(bad), "-c", "wrong", "--template-id", "999", "--params", "{验证码}"
        ).exit_code
        == 0
    )
    stopped = run("send", "wrong")
    assert stopped.exit_code == 2 and "117" in stopped.output
    assert status_json(run, "wrong")["by_state"]["pending"] == 1


def test_suppressed_numbers_are_marked_at_import(run, sandbox, tmp_path):
    assert run("suppress", "add", "+86 138-0000-0002").exit_code == 0
    path = write_csv(tmp_path / "l.csv", PHONES)
    run("import", str(path), "-c", "s", "-m", MESSAGE)
    assert status_json(run, "s")["by_state"]["suppressed"] == 1
    assert run("send", "s").exit_code == 0
    assert set(ledger_counts(sandbox)) == {"13800000001"}
    assert run("suppress", "remove", "13800000002").output.startswith("1 numbers removed")


@pytest.mark.parametrize(
    "command",
    [
        "import",
        "send",
        "reconcile",
        "status",
        "list",
        "report",
        "balance",
        "pause",
        "cancel",
        "retry",
        "demo",
        "sandbox",
    ],
)
def test_every_command_has_help_with_an_example(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_progress_lines_without_a_terminal_and_none_with_quiet(run, tmp_path):
    path = write_csv(tmp_path / "l.csv", [f"1380000{i:04d}" for i in range(30)])
    run("import", str(path), "-c", "a", "-m", MESSAGE)
    run("import", str(path), "-c", "b", "-m", MESSAGE + " ")
    assert "sending: 30/30" in run("send", "a").output
    quiet = run("--quiet", "send", "b")
    assert quiet.exit_code == 0 and "sending:" not in quiet.output and "sent 30" in quiet.output


def test_sandbox_command_prints_its_url_serves_and_stops_on_ctrl_c(tmp_path):
    import signal
    import subprocess
    import sys

    import requests

    ledger = tmp_path / "ledger.jsonl"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "campaigns",
            "sandbox",
            "--port",
            "0",
            "--app-id",
            "a",
            "--app-secret",
            "s",
            "--balance",
            "7",
            "--ledger",
            str(ledger),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        reply = requests.post(url + "/account/balance.do", data={"appId": "a", "appSecret": "s"})
        assert reply.json() == {"code": 0, "data": 7}
        sent = requests.post(
            url + "/sms/send.do",
            data={
                "appId": "a",
                "appSecret": "s",
                "number": "13800138000",
                "message": "【测】你好",
                "messageId": "m1",
            },
        )
        assert sent.json()["code"] == 0
        assert json.loads(ledger.read_text(encoding="utf-8"))["messageId"] == "m1"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
    assert server.returncode == 0


def test_a_locked_database_stops_with_one_line_and_the_send_resumes(
    run, imported, db_url, sandbox, monkeypatch
):
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 200)  # instead of waiting minutes for the lock
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another command's long transaction, an import say
    result = run("send", "s")
    holder.execute("ROLLBACK")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "(database is locked)" in result.output
    assert "run the same command again" in result.output
    assert run("send", "s").exit_code == 0
    assert status_json(run, "s")["by_state"]["sent"] == 2
    assert ledger_counts(sandbox) == {"13800000001": 1, "13800000002": 1}
