"""Shared fixtures: a real sandbox over loopback HTTP, a real SQLite file, the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from campaigns.cli import cli
from campaigns.config import Secret, Settings
from campaigns.provider.sandbox import Sandbox, SandboxConfig
from tests.support.postgres import note_pg_test, pg_database, pg_summary, require_pg

# Re-exported for the test modules that still import them from here; new code imports
# tests.support.recipients (test modules do not import each other, conftest included).
from tests.support.recipients import (  # noqa: F401
    APP_ID,
    APP_SECRET,
    ledger_counts,
    status_json,
    valid_phones,
    write_csv,
)


@pytest.fixture(autouse=True)
def user_data_folder(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A fresh per-user data folder (the default database's home) for each test: no test writes
    to the real one, child processes included. Named apart from the test (tmp_path holds the
    test's name, which a test may look for in what it prints)."""
    folder = tmp_path_factory.mktemp("user-data")
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    monkeypatch.delenv("CAMPAIGNS_DB", raising=False)
    return folder


@pytest.fixture
def sandbox(tmp_path: Path):
    config = SandboxConfig(
        app_id=APP_ID,
        app_secret=APP_SECRET,
        ledger=str(tmp_path / "ledger.jsonl"),
        delivery_delay_s=0.2,
        seed=7,
    )
    with Sandbox(config) as server:
        yield server


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for one test (skipped, and said so, without a server)."""
    require_pg()
    note_pg_test()
    with pg_database(prefix="test") as url:
        yield url


def pytest_terminal_summary(terminalreporter) -> None:
    line = pg_summary()
    if line:
        terminalreporter.write_line(line)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request, tmp_path: Path) -> str:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'campaigns.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'campaigns.db'}"


@pytest.fixture
def settings(sandbox: Sandbox, db_url: str) -> Settings:
    return Settings(
        db_url=db_url,
        api_url=sandbox.url,
        app_id=APP_ID,
        app_secret=Secret(APP_SECRET),
        read_timeout=2.0,
        lookup_wait=0.2,
    )


@pytest.fixture
def run(sandbox: Sandbox, db_url: str):
    """Run the CLI in-process with global options pointing at the sandbox and the test database."""

    def invoke(*args: str, secret: str = APP_SECRET):
        runner = CliRunner()
        base = [
            "--db",
            db_url,
            "--api-url",
            sandbox.url,
            "--app-id",
            APP_ID,
            "--app-secret",
            secret,
            "--lookup-wait",
            "0.2",
        ]
        return runner.invoke(cli, [*base, *args], catch_exceptions=False)

    return invoke
