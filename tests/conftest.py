"""Shared fixtures: a real sandbox over loopback HTTP, a real SQLite file, the real CLI."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from campaigns.cli import cli
from campaigns.config import Secret, Settings
from campaigns.provider.sandbox import Sandbox, SandboxConfig

APP_ID = "test-app"
APP_SECRET = "s3cret-Never-Printed"


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


def write_csv(path: Path, phones: list[str], names: list[str] | None = None) -> Path:
    names = names or [f"客户{i}" for i in range(len(phones))]
    lines = ["手机号,姓名"] + [f"{p},{n}" for p, n in zip(phones, names, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def valid_phones(count: int, start: int = 0) -> list[str]:
    return [f"138{start + i:08d}" for i in range(count)]


def ledger_counts(sandbox: Sandbox) -> Counter:
    return Counter(entry["number"] for entry in sandbox.ledger_entries())


def status_json(run, name: str) -> dict:
    result = run("status", name, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
