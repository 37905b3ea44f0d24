"""Shared fixtures: a real sandbox over loopback HTTP, a real SQLite file, the real CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench._common import PG_SERVER, pg_admin, pg_database
from campaigns.cli import cli
from campaigns.config import Secret, Settings
from campaigns.provider.sandbox import Sandbox, SandboxConfig

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


# PostgreSQL tests run against PG_SERVER, each in a database of its own that is dropped after.
_pg_state: dict[str, object] = {"ran": 0}


def _pg_unreachable() -> str | None:
    if "problem" not in _pg_state:
        try:
            connection, _ = pg_admin(timeout=3)
            connection.close()
            _pg_state["problem"] = None
        except Exception as exc:  # any failure to connect means: not reachable here
            _pg_state["problem"] = f"{type(exc).__name__}: {exc}".strip()
    return _pg_state["problem"]  # type: ignore[return-value]


def require_pg() -> None:
    """No server: fail where PostgreSQL is required (CI), else skip and say so in the summary."""
    problem = _pg_unreachable()
    if problem:
        if os.environ.get("CAMPAIGNS_REQUIRE_PG"):
            pytest.fail(f"PostgreSQL required but not reachable at {PG_SERVER}: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_SERVER}")


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for one test (skipped, and said so, without a server)."""
    require_pg()
    _pg_state["ran"] = int(_pg_state["ran"]) + 1  # type: ignore[arg-type]
    with pg_database(prefix="test") as url:
        yield url


def pytest_terminal_summary(terminalreporter) -> None:
    problem = _pg_state.get("problem")
    if problem:
        terminalreporter.write_line(
            f"PostgreSQL NOT reachable at {PG_SERVER} ({problem}): its tests were skipped, "
            "not passed. Set CAMPAIGNS_TEST_PG to a server URL to run them."
        )
    elif _pg_state["ran"]:
        terminalreporter.write_line(f"PostgreSQL tests ran against {PG_SERVER}.")


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
