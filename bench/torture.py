"""Exactly-once torture at any size: SIGKILL `campaigns send` processes at random moments while
the provider misbehaves, with several senders working one campaign at once.

    python -m bench.torture --recipients 5000 --kills 20 --senders 3 --seed 1
    python -m bench.torture --pg --recipients 5000 --kills 20 --senders 3   # on PostgreSQL

What a round does and what the verdict checks: see tests/support/torture.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from bench._common import prepare
from tests.support.postgres import PG_SERVER, pg_database


def main() -> None:
    prepare()
    # Imported after prepare(): it may put a frozen snapshot of the code under test first.
    from tests.support.torture import TortureConfig, run_torture

    defaults = TortureConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, value in asdict(defaults).items():
        if isinstance(value, tuple) or name == "db_url":
            continue
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--db-url", default=None, help="default: a SQLite file in a temp folder")
    parser.add_argument(
        "--pg",
        nargs="?",
        const="",
        default=None,
        metavar="SERVER_URL",
        help="run on a fresh PostgreSQL database on this server (default: CAMPAIGNS_TEST_PG or "
        "the local test server), dropped at the end",
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="default bench/results/torture[-pg].json"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = vars(parser.parse_args())
    keep, pg, output = args.pop("keep"), args.pop("pg"), args.pop("output")
    folder = Path(tempfile.mkdtemp(prefix="torture-"))
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if pg is not None:
            args["db_url"] = stack.enter_context(pg_database(pg or PG_SERVER, "torture"))
        config = TortureConfig(**args)
        verdict = run_torture(config, folder)
    seconds = time.monotonic() - started
    print(verdict.line() + f" seconds={seconds:.0f}")
    output = output or Path(f"bench/results/torture{'-pg' if pg is not None else ''}.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    shown = asdict(config) | {"db_url": "fresh PostgreSQL database" if pg is not None else None}
    figures = asdict(verdict) | {
        "config": shown,
        "ok": verdict.ok,
        "line": verdict.line(),
        "seconds": round(seconds),
    }
    output.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    if keep:
        print(f"work folder: {folder}")
    sys.exit(0 if verdict.ok else 1)


if __name__ == "__main__":
    main()
