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
    "latency": {"latency", "faults", "reconcile_faults"},
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


def test_importing_the_benchmarks_does_nothing(tmp_path: Path) -> None:
    """No folder made, no signal disposition changed, nothing put on sys.path, even with a
    snapshot root set: a benchmark does that when it runs (``bench._common.prepare``)."""
    copy = tmp_path / "bench"
    copy.mkdir()
    for module in (ROOT / "bench").glob("*.py"):
        (copy / module.name).write_bytes(module.read_bytes())
    modules = sorted(f"bench.{p.stem}" for p in copy.glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, signal, sys\n"
        "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
        "path = list(sys.path)\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "assert sys.path == path, set(sys.path) - set(path)\n"
        "assert signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{tmp_path}:{ROOT}",
        "BENCH_CAMPAIGNS_ROOT": str(tmp_path / "snapshot"),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (copy / ".cache").exists()
