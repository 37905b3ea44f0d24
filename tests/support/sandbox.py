"""Helpers shared by the sandbox's own tests."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme


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


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for serving HTTPS on 127.0.0.1 with a certificate from a test CA."""

    ca: Path
    chain: Path
    key: Path
    combined: Path  # the key and the chain in one file


def write_tls_files(folder: Path) -> TlsFiles:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(*(folder / f"{name}.pem" for name in ("ca", "chain", "key", "combined")))
    ca.cert_pem.write_to_path(str(files.ca))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(files.chain), append=True)
    cert.private_key_pem.write_to_path(str(files.key))
    cert.private_key_and_cert_chain_pem.write_to_path(str(files.combined))
    return files
