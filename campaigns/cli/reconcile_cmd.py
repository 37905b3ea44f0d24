"""reconcile: delivery states from lookups, once or until every message is final."""

from __future__ import annotations

import sys
import time
from datetime import timedelta

import click

from campaigns import api
from campaigns.cli.base import cli, err, out, progress
from campaigns.config import Settings
from campaigns.sending.pacing import DEFAULT_CAP

EXIT_INTERRUPTED = 130
# How --wait waits; tests put a clock of their own here.
_sleep = time.sleep


def _summary(result) -> str:
    return (
        f"delivered {result.delivered}, undelivered {result.undelivered}, "
        f"not final yet {result.still_pending + result.not_found}"
        + (f", expired {result.expired}" if result.expired else "")
        + (f", lookups failed {result.errors}" if result.errors else "")
    )


def _in_words(seconds: float) -> str:
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


@cli.command()
@click.argument("name")
@click.option("--rate", type=float, default=None, help="Lookups per second (default: unlimited).")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1000),
    default=DEFAULT_CAP,
    show_default=True,
    help="At most this many lookups in flight; below it, --rate × the measured latency.",
)
@click.option(
    "--expire-after",
    type=float,
    default=72.0,
    show_default=True,
    metavar="HOURS",
    help="Sent but unconfirmed for longer than this: expired.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="Keep looking up (after 10 s, 30 s, 1 min, 5 min, then every 15 min) until every "
    "message is final or expired.",
)
@click.pass_obj
def reconcile(
    settings: Settings,
    name: str,
    rate: float | None,
    concurrency: int,
    expire_after: float,
    wait: bool,
) -> None:
    """Look up every sent message and record delivered / undelivered.

    \b
    Example:
      campaigns reconcile spring
      campaigns reconcile spring --wait
    """
    options = {
        "rate": rate,
        "concurrency": concurrency,
        "expire_after": timedelta(hours=expire_after),
    }
    if wait:
        return _reconcile_waiting(settings, name, options)
    with progress("reconciling") as show:
        result = api.reconcile(
            settings,
            name,
            on_progress=lambda p: show(p.done, p.total, f"delivered {p.delivered}"),
            **options,
        )
    if result.nothing_sent:
        out.print(f"nothing has been sent yet in campaign {name}: run `campaigns send {name}`")
        return None
    out.print(_summary(result))
    if line := result.rate_summary():
        out.print(line)
    return None


def _reconcile_waiting(settings: Settings, name: str, options: dict) -> None:
    def report(number: int, result, next_wait: float | None) -> None:
        then = f"; next look in {_in_words(next_wait)}" if next_wait is not None else ""
        err.print(f"pass {number}: {_summary(result)}{then}")
        if line := result.rate_summary():
            err.print(line)

    try:
        result = api.reconcile_until_final(settings, name, sleep=_sleep, on_pass=report, **options)
    except KeyboardInterrupt:
        out.print(
            "stopped waiting; every answer fetched is recorded: "
            f"`campaigns reconcile {name} --wait` carries on"
        )
        sys.exit(EXIT_INTERRUPTED)
    if result.nothing_sent:
        out.print(f"nothing has been sent yet in campaign {name}: run `campaigns send {name}`")
        return
    out.print(f"every sent message of {name} has a final state: campaigns status {name}")
