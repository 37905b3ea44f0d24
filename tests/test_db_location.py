"""Where the database lives (issue 16 §5): CAMPAIGNS_DB, else ./campaigns.db if it exists, else
the user's data folder; a command that finds no campaign names the database it looked in."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from campaigns.cli import cli


def _run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_without_a_local_database_the_user_data_folder_is_used_and_named(
    elsewhere: Path, user_data_folder: Path
) -> None:
    expected = user_data_folder / "campaigns" / "campaigns.db"
    missing = _run("status", "spring")
    assert missing.exit_code == 1
    assert f"error: no campaign named 'spring' in sqlite:///{expected} (campaigns: none yet" in (
        missing.output
    )
    assert expected.is_file() and not (elsewhere / "campaigns.db").exists()
    assert f"database: sqlite:///{expected}\n" in _run("list").output


def test_a_campaigns_db_in_the_current_folder_is_used_when_it_exists(elsewhere: Path) -> None:
    (elsewhere / "campaigns.db").touch()
    assert "database: sqlite:///campaigns.db\n" in _run("list").output


def test_campaigns_db_wins_over_both(elsewhere: Path, tmp_path: Path) -> None:
    (elsewhere / "campaigns.db").touch()
    chosen = tmp_path / "chosen.db"
    listed = _run("list", env={"CAMPAIGNS_DB": f"sqlite:///{chosen}"}).output
    assert f"database: sqlite:///{chosen}\n" in listed
    assert (
        "in sqlite:///" + str(chosen) in _run("--db", f"sqlite:///{chosen}", "status", "x").output
    )


def test_the_database_named_hides_its_password() -> None:
    from campaigns.store.db import masked

    assert masked("postgresql+psycopg://me:hunter2@db/x") == "postgresql+psycopg://me:***@db/x"
