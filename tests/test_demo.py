"""``campaigns demo`` runs a whole campaign, and the command it suggests works in a plain shell."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path


def test_demo_completes_and_its_hint_runs_without_an_active_venv(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    demo = subprocess.run(
        [sys.executable, "-m", "campaigns", "demo", "--folder", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (demo.returncode, demo.stderr) == (0, "")
    assert {"report.xlsx", "report.csv", "report.html", "sandbox-ledger.jsonl"} <= {
        path.name for path in folder.iterdir()
    }
    hint = re.search(r"\(try: (.+ status demo)\)", demo.stdout)
    assert hint, demo.stdout
    plain_shell = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/")}
    status = subprocess.run(
        shlex.split(hint.group(1)),
        capture_output=True,
        text=True,
        timeout=60,
        env=plain_shell,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert "campaign demo" in status.stdout
