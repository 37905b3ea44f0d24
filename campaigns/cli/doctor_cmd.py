"""doctor: check the account before the first real campaign, and measure what is unknown."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from campaigns import api
from campaigns.cli.base import EXIT_STOPPED, cli, out
from campaigns.config import Settings


@cli.command()
@click.option("--test-number", metavar="NUMBER", help="Send ONE test SMS to this number.")
@click.option("--message", metavar="TEXT", help="The test SMS text (default: a harmless one).")
@click.option(
    "--watch",
    type=click.FloatRange(0.5, 3600),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to keep looking the test SMS up, to record how its status changes.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object for scripts.")
@click.option(
    "--save",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every request path and raw reply (appId and appSecret redacted) to this file.",
)
@click.pass_obj
def doctor(
    settings: Settings,
    test_number: str | None,
    message: str | None,
    watch: float,
    as_json: bool,
    save: Path | None,
) -> None:
    """Check host, TLS, credentials and balance; with --test-number, measure lookups.

    It sends at most one SMS (with --test-number), never more. Exit 0 when every step passed,
    2 otherwise. Attach the --save file to a bug report.

    \b
    Example:
      campaigns doctor
      campaigns doctor --test-number 13800138000 --save doctor.json
    """
    report = api.doctor(settings, test_number=test_number, message=message, watch=watch, save=save)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        from campaigns.doctor import plain_words

        for line in plain_words(report, settings):
            out.print(line)
    if not report.ok:
        sys.exit(EXIT_STOPPED)
