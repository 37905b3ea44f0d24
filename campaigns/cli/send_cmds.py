"""send, pause, cancel, retry: moving a campaign's messages out."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from campaigns import api
from campaigns.cli.base import cli, err, labelled, out, progress
from campaigns.config import Settings
from campaigns.errors import UserError
from campaigns.schedule import MARKETING_WINDOW, utc_to_shanghai_wall
from campaigns.send_settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_ERROR_BUDGET,
    OPTION_NAMES,
    resume_command,
)

if TYPE_CHECKING:
    from campaigns.sending import SendProgress


@cli.command()
@click.argument("name")
@click.option(
    "--rate",
    metavar="N",
    help="Messages per second for the whole account [default: none, as fast as the account "
    "allows].",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1000),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="The most requests in flight at once (below it, --rate × the measured latency).",
)
@click.option(
    "--dry-run", is_flag=True, help="Show what would be sent and if the balance covers it."
)
@click.option(
    "--test",
    "tests",
    multiple=True,
    metavar="NUMBER",
    help="Send the first message to this test number only (repeatable).",
)
@click.option(
    "--window",
    help="Daily send hours, Asia/Shanghai, e.g. 08:00-21:00 "
    f"(default {MARKETING_WINDOW} for --marketing).",
)
@click.option(
    "--marketing/--no-marketing",
    default=False,
    help=f"Marketing SMS: only inside {MARKETING_WINDOW}, and only with 退订 in the text.",
)
@click.option("--at", "start_at", metavar="'YYYY-MM-DD HH:MM'", help="Start no earlier than this.")
@click.option("--until", metavar="'YYYY-MM-DD HH:MM'", help="Stop sending at this time.")
@click.option(
    "--no-wait", is_flag=True, help="Outside the window: exit (saying when) instead of waiting."
)
@click.option(
    "--cap", metavar="N/24h", help="At most N SMS per number per period, across campaigns."
)
@click.option(
    "--error-budget",
    default=DEFAULT_ERROR_BUDGET,
    show_default=True,
    metavar="X%/N",
    help="Pause when more than X% of the last N sends fail permanently.",
)
@click.option(
    "--allow-partial/--no-allow-partial",
    default=False,
    help="Start even if the balance cannot cover it all.",
)
@click.option(
    "--without-opt-out",
    is_flag=True,
    help="Send a marketing text that has no 退订 anyway (carriers may block it).",
)
@click.pass_context
def send(
    ctx: click.Context,
    name: str,
    dry_run: bool,
    tests: tuple[str, ...],
    no_wait: bool,
    **_: object,
) -> None:
    """Send the campaign's pending messages; run again to resume after any stop.

    The first send stores its settings (--rate, --window/--marketing, --at, --until, --cap,
    --error-budget, --allow-partial, --concurrency, --without-opt-out) with the campaign:
    `send NAME` alone resumes with them, from any host. An option given again replaces its
    stored value; `none` clears --rate, --window, --at, --until or --cap.

    \b
    Example:
      campaigns send spring --rate 50 --concurrency 8
      campaigns send spring --dry-run
      campaigns send spring --test 13800138000
      campaigns send spring --marketing --cap 2/24h
      campaigns send spring            # resume with the stored settings
    """
    settings: Settings = ctx.obj
    if tests:
        for result in api.send_tests(settings, name, tests):
            verdict = "sent" if result.ok else f"NOT sent: {result.detail}"
            out.print(f"test {result.phone} ({result.message_id}): {verdict}")
        return None
    start = api.start_send(settings, name, _given(ctx), dry_run=dry_run)
    for warning in start.warnings:
        err.print(labelled("warning:", "yellow", warning))
    if dry_run:
        out.print(f"would send with: {start.settings.as_options()}")
        return _print_plan(api.send_plan(settings, name))
    err.print(start.line())
    options = start.settings.options(no_wait=no_wait, on_wait=lambda message: err.print(message))
    with progress("sending") as show:
        started = time.monotonic()

        def on_progress(sent: SendProgress) -> None:
            rate = sent.done / max(time.monotonic() - started, 0.001)
            asked = f" of {sent.asked_rate:g}/s asked" if sent.asked_rate else ""
            show(sent.done, sent.total, f"failed {sent.failed}, {rate:,.1f}/s{asked}")

        options.on_progress = on_progress
        sent = api.send(settings, name, options)
    parts = [f"sent {sent.sent}", f"failed {sent.failed}"]
    if sent.confirmed_by_lookup:
        parts.append(f"confirmed by lookup {sent.confirmed_by_lookup}")
    if sent.suppressed:
        parts.append(f"suppressed {sent.suppressed}")
    if sent.unknown:
        parts.append(f"outcome unknown {sent.unknown} (run send again to resolve)")
    if sent.deferred:
        due = utc_to_shanghai_wall(sent.next_due) if sent.next_due else None
        parts.append(f"deferred {sent.deferred}" + (f" until {due:%Y-%m-%d %H:%M}" if due else ""))
    if sent.achieved_rate:
        asked = f" (asked {sent.asked_rate:g}/s)" if sent.asked_rate else ""
        parts.append(f"at {sent.achieved_rate:,.1f}/s{asked}")
    out.print(", ".join(parts))
    if shortfall := sent.rate_summary():
        out.print(shortfall)


def _given(ctx: click.Context) -> dict[str, object]:
    """The stored settings' options the user typed this time (not click's defaults)."""
    return {
        name: ctx.params[name]
        for name in OPTION_NAMES
        if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)
    }


def _print_plan(plan) -> None:
    out.print(
        f"campaign {plan.campaign}: {plan.messages} messages to send, {plan.segments} SMS segments"
    )
    out.print(
        f"balance: {plan.balance} SMS — "
        + (
            "enough"
            if plan.covered
            else f"NOT enough: {plan.segments - plan.balance} short (top up, or --allow-partial)"
        )
    )
    out.print("dry run: nothing was sent")


@cli.command()
@click.argument("name")
@click.pass_obj
def pause(settings: Settings, name: str) -> None:
    """Pause a campaign; a running send stops within a second. `send NAME` resumes it.

    \b
    Example:
      campaigns pause spring
    """
    api.pause(settings, name)
    out.print(f"campaign {name} paused; `{resume_command(name)}` resumes it")


@cli.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def cancel(settings: Settings, name: str, yes: bool) -> None:
    """Cancel a campaign for good: its unsent messages are never sent.

    \b
    Example:
      campaigns cancel spring --yes
    """
    if not yes:
        click.confirm(f"Cancel campaign {name} for good?", abort=True)
    count = api.cancel(settings, name)
    out.print(f"campaign {name} cancelled; {count} unsent messages will never be sent")


@cli.command()
@click.argument("name")
@click.option(
    "--state",
    "states",
    default="failed,undelivered",
    show_default=True,
    help="Which messages: failed, undelivered, expired.",
)
@click.option("--codes", help="Only these provider codes, e.g. 1000,109.")
@click.pass_obj
def retry(settings: Settings, name: str, states: str, codes: str | None) -> None:
    """Queue chosen messages again under new messageIds; then run `send`.

    \b
    Example:
      campaigns retry spring --state undelivered
      campaigns retry spring --codes 109 && campaigns send spring
    """
    try:
        wanted = [int(code) for code in codes.split(",")] if codes else []
    except ValueError:
        raise UserError(f"--codes {codes!r}: expected numbers like 1000,109") from None
    count = api.retry(settings, name, [s.strip() for s in states.split(",")], wanted)
    out.print(f"{count} messages queued again with new messageIds; run `{resume_command(name)}`")
