"""`campaigns send` as a real child process, and waiting for what the sandbox's ledger shows."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from campaigns.provider.sandbox import Sandbox
from tests.support.recipients import APP_ID, APP_SECRET


def start_send(sandbox: Sandbox, db_url: str, *extra: str) -> subprocess.Popen:
    """`campaigns send spring` (2 in flight), its output piped, against ``sandbox``."""
    env = os.environ | {
        "CAMPAIGNS_DB": db_url,
        "ZHENZI_API_URL": sandbox.url,
        "ZHENZI_APP_ID": APP_ID,
        "ZHENZI_APP_SECRET": APP_SECRET,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "campaigns", "send", "spring", "--concurrency", "2", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_ledger(sandbox: Sandbox, at_least: int, process: subprocess.Popen) -> None:
    """Until the phones received ``at_least`` SMS; fails if the sender ends or stalls first."""
    deadline = time.monotonic() + 30
    while len(sandbox.ledger_entries()) < at_least:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline, "send made no progress"
        time.sleep(0.02)
