"""Hostile text and broken databases: user data is never markup, controls show as escapes, and
every refusal is one line (issue 13 §3 and §5)."""

from __future__ import annotations

import json
import shlex
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from campaigns.cli import cli
from campaigns.cli.base import visible
from campaigns.store import db

MESSAGE = "【店】{姓名}您好 [bold]{订单号}[/]"


def _run(db_url: str, *args: str):
    return CliRunner().invoke(cli, ["--db", db_url, *args], catch_exceptions=False)


def _csv(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = tmp_path / "in.csv"
    lines = ["手机号,姓名,订单号", *(",".join(row) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["[/x]", "[bold red]spring[/]", "[/]"])
def test_markup_in_a_campaign_name_is_text_everywhere(tmp_path: Path, name: str) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    source = _csv(tmp_path, [("13800000001", "张三", "A1")])
    imported = _run(url, "import", str(source), "-c", name, "-m", MESSAGE)
    assert imported.exit_code == 0, imported.output
    assert f"campaign {name!r}" in imported.output
    paused = _run(url, "pause", name)
    assert paused.exit_code == 0
    assert f"`campaigns send {shlex.quote(name)}` resumes it" in paused.output
    shown = _run(url, "status", name)
    assert shown.exit_code == 0 and f"campaign {name}" in shown.output
    listed = _run(url, "list")
    assert listed.exit_code == 0 and name[:4] in listed.output  # a narrow table may wrap it
    assert f'"campaign": {json.dumps(name)}' in _run(url, "list", "--json").output


def test_markup_in_a_suppression_reason_does_not_break_the_list(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    assert _run(url, "suppress", "add", "13800000001", "--reason", "[/]").exit_code == 0
    assert _run(url, "suppress", "add", "13800000002", "--reason", "[red]x").exit_code == 0
    listed = _run(url, "suppress", "list")
    assert listed.exit_code == 0
    assert "[/]" in listed.output and "[red]x" in listed.output


def test_the_dry_run_preview_shows_exactly_what_will_be_sent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    source = _csv(tmp_path, [("13800000001", "[/]王五", "[b]7")])
    shown = _run(url, "import", str(source), "-c", "c", "-m", MESSAGE, "--dry-run")
    assert shown.exit_code == 0, shown.output
    assert "sample: 【店】[/]王五您好 [bold][b]7[/]" in shown.output


def test_terminal_escapes_from_a_file_reach_the_terminal_as_visible_text(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    source = _csv(tmp_path, [("13800000001", "\x1b]0;owned\x07\x1b[2J张三", "A1")])
    shown = _run(url, "import", str(source), "-c", "c", "-m", MESSAGE, "--dry-run")
    assert shown.exit_code == 0, shown.output
    assert "\x1b" not in shown.output and "\x07" not in shown.output
    assert "\\x1b]0;owned\\x07\\x1b[2J张三" in shown.output


def test_visible_escapes_controls_and_bidi_overrides_but_keeps_text() -> None:
    assert visible("订单\x1b[31m") == "订单\\x1b[31m"
    assert visible("a\u202eb\x9bc\x7f") == "a\\u202eb\\x9bc\\x7f"
    assert visible("行一\n\t行二 ½ 🙂") == "行一\n\t行二 ½ 🙂"


def test_a_database_made_by_a_newer_version_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    url = f"sqlite:///{path}"
    assert _run(url, "list").exit_code == 0
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0999'")
    result = _run(url, "list")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "made by a newer version of campaigns (schema 0999" in lines[0]
    with sqlite3.connect(path) as connection:  # and nothing was touched
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == ("0999",)


def test_a_file_that_is_not_a_database_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database" * 100)
    result = _run(f"sqlite:///{path}", "list")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: sqlite:///{path} is not a campaigns database (file is not a database); "
        "give another --db, or move that file away"
    ]
    assert "run the same command again" not in result.output
    assert path.read_bytes().startswith(b"these are my notes")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+nodriver://ops:hunter2@db.example/campaigns",
        "postgresql://ops:hunter2@db.example:notaport/campaigns",
        "nosuchdb://ops:hunter2@db.example/campaigns",
    ],
)
def test_database_passwords_never_print(url: str) -> None:
    result = _run(url, "list")
    assert result.exit_code == 1
    assert "hunter2" not in result.output
    assert "ops:***@db.example" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_masked_leaves_urls_without_a_password_alone() -> None:
    assert db.masked("sqlite:///x.db") == "sqlite:///x.db"
    assert db.masked("postgresql://ops@h/db") == "postgresql://ops@h/db"
    assert db.masked("postgresql://ops:p@ss:w@h/db") == "postgresql://ops:***@h/db"


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "without leading or trailing spaces"),
        (" spring", "without leading or trailing spaces"),
        ("spring\t", "without leading or trailing spaces"),
        ("x" * 201, "201 characters long: at most 200"),
        ("spring\x1b[2J", "control character U+001B"),
        ("spring\u202egnirps", "control character U+202E"),
    ],
)
def test_campaign_names_are_trimmed_short_and_printable(
    tmp_path: Path, name: str, says: str
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    source = _csv(tmp_path, [("13800000001", "张三", "A1")])
    for dry_run in ([], ["--dry-run"]):
        result = _run(url, "import", str(source), "-c", name, "-m", MESSAGE, *dry_run)
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and says in lines[0]
    assert "\x1b" not in result.output
    assert _run(url, "list", "--json").output.strip() == "[]"


def test_the_longest_allowed_campaign_name_round_trips(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    name = "双十一" + "x" * 197
    source = _csv(tmp_path, [("13800000001", "张三", "A1")])
    assert _run(url, "import", str(source), "-c", name, "-m", MESSAGE).exit_code == 0
    assert f'"campaign": "{name}"' in _run(url, "status", name, "--json").output
