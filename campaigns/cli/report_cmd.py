"""report: CSV, XLSX and HTML delivery reports."""

from __future__ import annotations

from pathlib import Path

import click

from campaigns import api
from campaigns.cli.base import cli, out
from campaigns.config import Settings
from campaigns.errors import UserError
from campaigns.store.models import STATES


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
    rows = api.report(settings, name, output, chosen, mask=mask, rejects_only=rejects)
    out.print(f"wrote {rows} rows to {output}")
