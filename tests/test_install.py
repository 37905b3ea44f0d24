"""A non-editable install, run from another directory, finds its migrations and sample data."""

import os
import subprocess
import sys


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
