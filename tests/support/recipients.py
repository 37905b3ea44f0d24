"""Recipient files and what the sandbox's ledger and `status --json` say about them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from campaigns.config import Secret
from campaigns.provider.client import ZhenziClient
from campaigns.provider.sandbox import Sandbox

APP_ID = "test-app"
APP_SECRET = "s3cret-Never-Printed"


def write_csv(path: Path, phones: list[str], names: list[str] | None = None) -> Path:
    names = names or [f"客户{i}" for i in range(len(phones))]
    lines = ["手机号,姓名"] + [f"{p},{n}" for p, n in zip(phones, names, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def valid_phones(count: int, start: int = 0) -> list[str]:
    return [f"138{start + i:08d}" for i in range(count)]


def ledger_counts(sandbox: Sandbox) -> Counter:
    return Counter(entry["number"] for entry in sandbox.ledger_entries())


def status_json(run: Any, name: str) -> dict:
    """``campaigns status NAME --json`` through the ``run`` fixture's CLI."""
    result = run("status", name, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def quick_client(url: str, max_attempts: int = 3) -> ZhenziClient:
    """Short timeouts and backoffs: a message uses up its attempts in well under a second."""
    return ZhenziClient(
        url,
        APP_ID,
        Secret(APP_SECRET),
        read_timeout=2.0,
        max_attempts=max_attempts,
        backoff_initial=0.01,
        backoff_max=0.02,
        visibility_wait=0.05,
    )
