"""Each benchmark runs at a tiny size (``--smoke``) and writes its figures: it runs, whatever speed.

The figures themselves are not checked: these machines are shared and noisy, and the goals are
for the full-size runs (``python -m bench.NAME``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMON_KEYS = {"benchmark", "smoke", "when", "machine", "params", "rows", "goals", "runs", "notes"}
ROW_KEYS = {
    "send": {"a", "b", "c"},
    "rate": {"200"},
    "import": {"3000"},
    "reconcile": {"b", "c"},
    "resume": {"big", "small", "import_campaigns_cli_s"},
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(ROW_KEYS))
def test_benchmark_smoke_run(name: str, tmp_path: Path) -> None:
    output = tmp_path / f"{name}.json"
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--smoke", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "goals" in done.stdout
    figures = json.loads(output.read_text(encoding="utf-8"))
    assert figures.keys() >= COMMON_KEYS
    assert figures["benchmark"] == name
    assert figures["smoke"] is True
    assert figures["rows"].keys() >= ROW_KEYS[name]
    assert figures["goals"], "every benchmark states its goals"
    for item in figures["goals"]:
        assert {"goal", "value", "op", "target", "met"} <= item.keys()
