"""Freeze a commit's ``campaigns`` package for benchmarking while the working tree keeps moving.

``python -m bench.snapshot [REV]`` exports REV (default HEAD) with ``git archive`` into
``bench/.cache/code-<sha>/``, moves ``migrations`` and ``sample_data`` inside the package as the
installed wheel has them, and prints the line that points the benchmarks at it::

    export BENCH_CAMPAIGNS_ROOT=bench/.cache/code-<sha>
    python -m bench.send

Every results file records the commit it measured (``code.commit``).

``--with PATH ...`` lays working-tree files over the export (for a change not committed yet, e.g.
``--with campaigns/provider/ratelimit.py``) into ``code-<sha>-<digest>/``; the results then say
``dirty: true`` and list the files and their SHA-256 under ``code.overlay``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import tarfile

from bench._common import CACHE, ROOT, prepare


def snapshot(rev: str = "HEAD", overlay: tuple[str, ...] = ()) -> str:
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    files = {path: hashlib.sha256((ROOT / path).read_bytes()).hexdigest() for path in overlay}
    name = f"code-{sha[:12]}"
    if files:
        name += "-" + hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:8]
    target = CACHE / name
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
        for path in files:
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / path, target / path)
        if files:
            (target / ".bench-overlay").write_text(json.dumps(files, indent=2) + "\n")
        (target / ".bench-commit").write_text(sha + "\n")
    return str(target)


def main(argv: list[str] | None = None) -> int:
    prepare()
    args_parser = argparse.ArgumentParser(prog="python -m bench.snapshot", description=__doc__)
    args_parser.add_argument("rev", nargs="?", default="HEAD")
    args_parser.add_argument(
        "--with", dest="overlay", nargs="+", default=[], metavar="PATH",
        help="working-tree files (relative to the project root) laid over the export",
    )  # fmt: skip
    args = args_parser.parse_args(argv)
    path = snapshot(args.rev, tuple(args.overlay))
    print(f"export BENCH_CAMPAIGNS_ROOT={path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
