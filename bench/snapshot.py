"""Freeze a commit's ``campaigns`` package for benchmarking while the working tree keeps moving.

``python -m bench.snapshot [REV]`` exports REV (default HEAD) with ``git archive`` into
``bench/.cache/code-<sha>/``, moves ``migrations`` and ``sample_data`` inside the package as the
installed wheel has them, and prints the line that points the benchmarks at it::

    export BENCH_CAMPAIGNS_ROOT=bench/.cache/code-<sha>
    python -m bench.send

Every results file records the commit it measured (``code.commit``).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile

from bench._common import CACHE, ROOT


def snapshot(rev: str = "HEAD") -> str:
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    target = CACHE / f"code-{sha[:12]}"
    if not (target / ".bench-commit").exists():
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", sha, "campaigns", "migrations",
             "sample_data"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
        for folder in ("migrations", "sample_data"):
            if (target / folder).exists() and not (target / "campaigns" / folder).exists():
                shutil.move(target / folder, target / "campaigns" / folder)
        (target / ".bench-commit").write_text(sha + "\n")
    return str(target)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = snapshot(argv[0] if argv else "HEAD")
    print(f"export BENCH_CAMPAIGNS_ROOT={path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
