"""report: CSV, XLSX and HTML delivery reports."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import click

from campaigns import api
from campaigns.cli.base import cli, err, out, progress
from campaigns.config import Settings
from campaigns.errors import UserError
from campaigns.store.models import STATES

PROGRESS_FROM = 100_000  # rows: a smaller report is done before a bar would tell anything


class RowsProgress:
    """A bar (rows written, rate, time left) that appears once a report proves large."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack
        self._show: Callable[[int, int | None, str], None] | None = None
        self._since = (0.0, 0)  # (time, rows) of the first chunk: the rate leaves out set-up

    def __call__(self, done: int, total: int) -> None:
        if total < PROGRESS_FROM:
            return
        if self._show is None:
            self._show = self._stack.enter_context(progress("report"))
            self._since = (time.monotonic(), done)
            self._show(done, total, "rows")
            return
        started, first = self._since
        rate = (done - first) / max(time.monotonic() - started, 1e-3)
        detail = f"rows, {rate:,.0f} rows/s"
        if not err.is_terminal:  # the bar has its own time-left column; a plain line does not
            detail += f", about {(total - done) / max(rate, 1):,.0f} s left"
        self._show(done, total, detail)


@cli.command()
@click.argument("name")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="FILE.csv, FILE.xlsx or FILE.html (the format follows the extension).",
)
@click.option("--state", "states", help="Only recipients in these states, e.g. failed,undelivered.")
@click.option("--mask", is_flag=True, help="Show phones as 138****8000.")
@click.option("--rejects", is_flag=True, help="Only the rows rejected at import, with reasons.")
@click.pass_obj
def report(
    settings: Settings, name: str, output: Path, states: str | None, mask: bool, rejects: bool
) -> None:
    """Write one row per recipient, with a summary and where delivery failed.

    \b
    Example:
      campaigns report spring --output spring.xlsx
      campaigns report spring --output retry.csv --state failed,undelivered
      campaigns report spring --output spring.html
    """
    chosen = [s.strip() for s in states.split(",")] if states else None
    unknown = sorted(set(chosen or ()) - set(STATES))
    if unknown:
        known = ", ".join(STATES)
        raise UserError(f"--state: unknown state {', '.join(unknown)} (states: {known})")
    import pyarrow  # loaded by pandas already

    # pandas' text columns live in pyarrow's pool; mimalloc's keeps every chunk's pages, while
    # the system allocator gives them back, which keeps a 5M-row report under 400 MB.
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    with ExitStack() as stack:
        rows = api.report(
            settings,
            name,
            output,
            chosen,
            mask=mask,
            rejects_only=rejects,
            on_progress=RowsProgress(stack),
        )
    out.print(f"wrote {rows} rows to {output}")
