"""A non-editable install, run from another directory, finds its migrations and sample data."""

import os
import subprocess
import sys
from pathlib import Path


def test_installed_copy_migrates_and_imports_from_elsewhere(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            ".",
        ],
        check=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = os.environ | {"PYTHONPATH": str(target), "CAMPAIGNS_DB": "sqlite:///here.db"}
    code = (
        "import campaigns, sys\n"
        "from campaigns import api\n"
        "from campaigns.config import Settings\n"
        "from campaigns.demo import sample_file\n"
        "assert str(campaigns.__file__).startswith(sys.argv[1]), campaigns.__file__\n"
        "s = api.import_file(Settings.from_env(), sample_file(), campaign='c',\n"
        "                    message='【测】{姓名}')\n"
        "print(s.accepted)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 100
    assert (elsewhere / "here.db").exists()
    # Every package of the source tree ships (pyproject lists them one by one), typed.
    source = Path(__file__).resolve().parent.parent / "campaigns"
    packages = {p.parent.relative_to(source) for p in source.rglob("__init__.py")}
    installed = {
        p.parent.relative_to(target / "campaigns") for p in target.glob("campaigns/**/__init__.py")
    }
    assert packages <= installed, f"not installed: {sorted(map(str, packages - installed))}"
    assert (target / "campaigns" / "py.typed").exists()
