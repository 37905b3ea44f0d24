"""Helpers shared by the sandbox's own tests."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_for(probe: Callable[[], Any], timeout: float = 3.0) -> Any:
    """Poll until ``probe`` returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.02)
    pytest.fail(f"condition not met within {timeout}s")


def sandbox_command(*options: str) -> subprocess.Popen[str]:
    """``campaigns sandbox`` on a free port, as a user would start it; its URL is stdout's first
    line."""
    return subprocess.Popen(
        [sys.executable, "-m", "campaigns", "sandbox", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
