"""reconcile: delivery states from lookups."""

from __future__ import annotations

from datetime import timedelta

import click

from campaigns import api
from campaigns.cli.base import cli, out, progress
from campaigns.config import Settings


@cli.command()
@click.argument("name")
@click.option("--rate", type=float, default=None, help="Lookups per second (default: unlimited).")
@click.option("--concurrency", type=click.IntRange(1, 256), default=16, show_default=True)
@click.option(
    "--expire-after",
    type=float,
    default=72.0,
    show_default=True,
    metavar="HOURS",
    help="Sent but unconfirmed for longer than this: expired.",
)
@click.pass_obj
def reconcile(
    settings: Settings, name: str, rate: float | None, concurrency: int, expire_after: float
) -> None:
    """Look up every sent message and record delivered / undelivered.

    \b
    Example:
      campaigns reconcile spring
    """
    with progress("reconciling") as show:
        result = api.reconcile(
            settings,
            name,
            rate=rate,
            concurrency=concurrency,
            expire_after=timedelta(hours=expire_after),
            on_progress=lambda p: show(p.done, p.total, f"delivered {p.delivered}"),
        )
    out.print(
        f"delivered {result.delivered}, undelivered {result.undelivered}, "
        f"not final yet {result.still_pending + result.not_found}"
        + (f", expired {result.expired}" if result.expired else "")
        + (f", lookups failed {result.errors}" if result.errors else "")
    )
