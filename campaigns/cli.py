"""The command line: parse options, call ``campaigns.api``, print. Decisions live in the library.

Exit codes: 0 done, 1 user error, 2 stopped for an account or provider reason, 130 interrupted.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, timedelta
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from campaigns import api
from campaigns.config import DEFAULT_API_URL, DEFAULT_DB, Settings
from campaigns.errors import AccountBlocked, CampaignsError, SendStopped, Transient, UserError
from campaigns.schedule import MARKETING_WINDOW, SHANGHAI, Cap, Window, parse_moment
from campaigns.store.models import STATES

EXIT_USER = 1
EXIT_STOPPED = 2
EXIT_INTERRUPTED = 130

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str, code: int) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    sys.exit(code)


class _Group(click.Group):
    """Turns the library's errors into one line and an exit code: no traceback for user mistakes."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SendStopped as exc:
            interrupted = exc.account is None and str(exc).startswith("stopped;")
            _fail(str(exc), EXIT_INTERRUPTED if interrupted else EXIT_STOPPED)
        except AccountBlocked as exc:
            _fail(f"{exc}; {exc.advice}" if exc.advice else str(exc), EXIT_STOPPED)
        except Transient as exc:
            _fail(f"the provider is unavailable: {exc}; try again later", EXIT_STOPPED)
        except (UserError, CampaignsError) as exc:
            _fail(str(exc), EXIT_USER)
        except DBAPIError as exc:  # locked past the busy timeout, a lost server connection
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            _fail(
                f"the database failed ({reason}); everything recorded before is kept:"
                " run the same command again (a send resumes where it stopped)",
                EXIT_STOPPED,
            )
        except KeyboardInterrupt:
            _fail("interrupted", EXIT_INTERRUPTED)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar="CAMPAIGNS_DB",
    default=DEFAULT_DB,
    show_default=True,
    help="Database URL (env CAMPAIGNS_DB).",
)
@click.option(
    "--api-url",
    envvar="ZHENZI_API_URL",
    default=DEFAULT_API_URL,
    show_default=True,
    help="Provider API URL (env ZHENZI_API_URL).",
)
@click.option("--app-id", envvar="ZHENZI_APP_ID", default="", help="appId (env ZHENZI_APP_ID).")
@click.option(
    "--app-secret",
    envvar="ZHENZI_APP_SECRET",
    default="",
    help="appSecret (env ZHENZI_APP_SECRET; prefer the variable: options show in `ps`).",
)
@click.option(
    "--read-timeout",
    envvar="ZHENZI_READ_TIMEOUT",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds to wait for a reply (env ZHENZI_READ_TIMEOUT).",
)
@click.option(
    "--lookup-wait",
    envvar="ZHENZI_LOOKUP_WAIT",
    type=float,
    default=3.0,
    show_default=True,
    help="Seconds before a message whose outcome is unknown is looked up (env ZHENZI_LOOKUP_WAIT).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.pass_context
def cli(
    ctx: click.Context,
    quiet: bool,
    db: str,
    api_url: str,
    app_id: str,
    app_secret: str,
    read_timeout: float,
    lookup_wait: float,
) -> None:
    """Bulk SMS campaigns for Zhenzi (榛子云短信): import, send exactly once, reconcile, report.

    \b
    Example:
      campaigns import customers.xlsx --campaign spring --message "【店铺】{姓名}您好…"
      campaigns send spring --rate 50
      campaigns reconcile spring && campaigns report spring --output spring.xlsx
    """
    ctx.meta["quiet"] = quiet
    ctx.obj = Settings.from_env(
        db_url=db,
        api_url=api_url,
        app_id=app_id,
        app_secret=app_secret,
        read_timeout=read_timeout,
        lookup_wait=lookup_wait,
    )


def main() -> None:
    # SIGTERM stops a send the way Ctrl-C does: in-flight requests finish and are recorded.
    # SIGINT too, even when started from a script that ignores it (a background job does).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cli(prog_name="campaigns")


# -- progress ----


@contextmanager
def _progress(title: str) -> Iterator[Callable[[int, int | None, str], None]]:
    """``show(done, total, detail)``: a bar on a terminal, a line every 10% otherwise."""
    if click.get_current_context().meta.get("quiet"):
        yield lambda done, total, detail: None
        return
    if not err.is_terminal:
        last = [-1.0]

        def line(done: int, total: int | None, detail: str) -> None:
            step = max((total or 0) / 10, 1) if total else 100_000
            if done == total or done - last[0] >= step:
                last[0] = done
                err.print(f"{title}: {done}/{total or '?'} {detail}")

        yield line
        return
    # Imported here: only a terminal shows bars, and `status` should not pay ~10 ms to load them.
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(title, total=None, detail="")
        yield lambda done, total, detail: bar.update(
            task, completed=done, total=total, detail=detail
        )


# -- commands ----


@cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--campaign", "-c", required=True, help="Campaign name (created if new).")
@click.option("--message", "-m", help="Text with {column} placeholders.")
@click.option("--template-file", type=click.Path(dir_okay=False), help="Read the text from a file.")
@click.option("--template-id", help="Send through this approved v2 template instead of free text.")
@click.option("--params", help='v2 templateParams per row, e.g. "{姓名},{订单号}".')
@click.option("--phone-column", help="Header of the phone column (found by name otherwise).")
@click.option("--encoding", help="Force the CSV encoding (utf-8, gbk, gb18030, ...).")
@click.option("--sheet", help="XLSX sheet name (default: the first).")
@click.option("--allow-international", is_flag=True, help="Accept valid non-mainland numbers.")
@click.option("--marketing", is_flag=True, help="Marketing text: warn without an opt-out (退订).")
@click.option("--dry-run", is_flag=True, help="Check and show a sample; store nothing.")
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False),
    help="Write rejected rows with their reason to FILE.csv / FILE.xlsx.",
)
@click.option("--json", "as_json", is_flag=True, help="The summary as one JSON object.")
@click.pass_obj
def import_command(settings: Settings, file: Path, campaign: str, as_json: bool, **options) -> None:
    """Import recipients from a CSV or XLSX file into a campaign.

    \b
    Example:
      campaigns import sample_data/recipients.csv --campaign demo \\
        --message "【榛子演示】{姓名}您好,订单{订单号}已发货" --rejects rejects.xlsx
      campaigns import list.xlsx -c otp --template-id 1001 --params "{验证码},5" --dry-run
    """
    if not any(options[key] for key in ("message", "template_file", "template_id")):
        raise UserError("give the text: --message, --template-file or --template-id with --params")
    with _progress("importing") as show:
        summary = api.import_file(
            settings,
            file,
            campaign=campaign,
            on_progress=lambda rows: show(rows, None, "rows"),
            **options,
        )
    if as_json:
        click.echo(json.dumps(_summary_json(summary), ensure_ascii=False))
    else:
        _print_import(summary)


def _summary_json(summary) -> dict:
    return {
        "campaign": summary.campaign,
        "source": summary.source,
        "rows": summary.rows,
        "accepted": summary.accepted,
        "rejected": summary.rejected,
        "segments": summary.segments,
        "largest_segments": summary.largest,
        "largest_characters": summary.largest_characters,
        "warnings": summary.warnings,
        "sample": summary.sample,
        "dry_run": summary.dry_run,
        "already_imported": summary.already_imported,
    }


def _print_import(summary) -> None:
    if summary.already_imported:
        out.print(
            f"{summary.source} was already imported into {summary.campaign!r} "
            f"({summary.accepted} of {summary.rows} rows accepted then): nothing added"
        )
        return
    verb = "would go" if summary.dry_run else "→"
    out.print(f"{summary.source}: {summary.rows} rows {verb} campaign {summary.campaign!r}")
    out.print(
        f"  accepted  {summary.accepted}: {summary.segments} SMS segments "
        f"(estimated cost {summary.cost} SMS); largest message "
        f"{summary.largest_characters} characters = {summary.largest} segments"
    )
    out.print(f"  rejected  {summary.rejected_total}")
    for reason, count in summary.rejected.items():
        out.print(f"    {count:>6}  {reason}: {api.reasons().get(reason.split(':')[0], reason)}")
    for warning in summary.warnings:
        err.print(f"[yellow]warning:[/] {warning}", markup=True)
    if summary.dry_run:
        for text in summary.sample:
            out.print(f"  sample: {text}")
        if len(summary.rejects):
            out.print("  first rejects:")
            for row in summary.rejects.head(10).itertuples(index=False):
                out.print(f"    row {row.row}: {row.reason}")
        out.print("dry run: nothing was stored")


@cli.command()
@click.argument("name")
@click.option("--rate", type=float, default=None, help="Messages per second for the whole account.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=16, show_default=True)
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
@click.option("--marketing", is_flag=True, help=f"Marketing SMS: only inside {MARKETING_WINDOW}.")
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
    default="20%/200",
    show_default=True,
    metavar="X%/N",
    help="Pause when more than X% of the last N sends fail permanently.",
)
@click.option(
    "--allow-partial", is_flag=True, help="Start even if the balance cannot cover it all."
)
@click.pass_obj
def send(
    settings: Settings,
    name: str,
    rate: float | None,
    concurrency: int,
    dry_run: bool,
    tests: tuple[str, ...],
    window: str | None,
    marketing: bool,
    start_at: str | None,
    until: str | None,
    no_wait: bool,
    cap: str | None,
    error_budget: str,
    allow_partial: bool,
) -> None:
    """Send the campaign's pending messages; run again to resume after any stop.

    \b
    Example:
      campaigns send spring --rate 50 --concurrency 8
      campaigns send spring --dry-run
      campaigns send spring --test 13800138000
      campaigns send spring --marketing --cap 2/24h
    """
    if dry_run:
        return _print_plan(api.send_plan(settings, name))
    if tests:
        for result in api.send_tests(settings, name, tests):
            verdict = "sent" if result.ok else f"NOT sent: {result.detail}"
            out.print(f"test {result.phone} ({result.message_id}): {verdict}")
        return None
    # Imported here: the commands that do not send start without the sending machinery.
    from campaigns.sending import SendOptions

    options = SendOptions(
        rate=rate,
        concurrency=concurrency,
        window=Window.parse(window or MARKETING_WINDOW) if (window or marketing) else None,
        start_at=parse_moment(start_at, "--at") if start_at else None,
        until=parse_moment(until, "--until") if until else None,
        no_wait=no_wait,
        cap=Cap.parse(cap) if cap else None,
        error_budget=_budget(error_budget),
        allow_partial=allow_partial,
        on_wait=lambda message: err.print(message),
    )
    with _progress("sending") as show:
        options.on_progress = lambda p: show(p.done, p.total, f"failed {p.failed}")
        result = api.send(settings, name, options)
    parts = [f"sent {result.sent}", f"failed {result.failed}"]
    if result.confirmed_by_lookup:
        parts.append(f"confirmed by lookup {result.confirmed_by_lookup}")
    if result.suppressed:
        parts.append(f"suppressed {result.suppressed}")
    if result.unknown:
        parts.append(f"outcome unknown {result.unknown} (run send again to resolve)")
    if result.deferred:
        due = result.next_due.replace(tzinfo=UTC).astimezone(SHANGHAI) if result.next_due else None
        parts.append(
            f"deferred {result.deferred}" + (f" until {due:%Y-%m-%d %H:%M}" if due else "")
        )
    out.print(", ".join(parts))


def _budget(text: str) -> tuple[float, int]:
    try:
        share, window = text.split("/")
        return float(share.rstrip("%")) / 100, int(window)
    except ValueError:
        raise UserError(f"--error-budget {text!r}: expected X%/N, e.g. 20%/200") from None


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
    out.print(f"campaign {name} paused; `campaigns send {name}` resumes it")


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
    out.print(f"{count} messages queued again with new messageIds; run `campaigns send {name}`")


@cli.group()
def suppress() -> None:
    """Numbers never to text (opted out / 退订), across all campaigns."""


@suppress.command("add")
@click.argument("items", nargs=-1, required=True, metavar="FILE|NUMBER...")
@click.option("--reason", default="opted out (退订)", show_default=True)
@click.pass_obj
def suppress_add(settings: Settings, items: tuple[str, ...], reason: str) -> None:
    """Add numbers (or every number in a CSV/XLSX file) to the suppression list.

    \b
    Example:
      campaigns suppress add 13800138000 unsubscribed.xlsx
    """
    _print_change(api.suppress(settings, items, reason), "added")


@suppress.command("remove")
@click.argument("items", nargs=-1, required=True, metavar="FILE|NUMBER...")
@click.pass_obj
def suppress_remove(settings: Settings, items: tuple[str, ...]) -> None:
    """Take numbers off the suppression list.

    \b
    Example:
      campaigns suppress remove 13800138000
    """
    _print_change(api.unsuppress(settings, items), "removed")


@suppress.command("list")
@click.pass_obj
def suppress_list(settings: Settings) -> None:
    """Every suppressed number with its reason.

    \b
    Example:
      campaigns suppress list
    """
    rows = api.suppressions(settings)
    for row in rows:
        out.print(f"{row.phone}  {row.added_at:%Y-%m-%d %H:%M} UTC  {row.reason}")
    out.print(f"{len(rows)} numbers suppressed")


def _print_change(change, verb: str) -> None:
    out.print(f"{change.changed} numbers {verb}")
    for given, reason in change.rejected:
        err.print(f"skipped {given!r}: {api.reasons().get(reason, reason)}")


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
    with _progress("reconciling") as show:
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


def print_status(status: api.CampaignStatus) -> None:
    table = Table(title=f"campaign {status.campaign}", show_footer=True)
    table.add_column("state", footer="total")
    table.add_column("messages", justify="right", footer=str(status.total))
    for state in STATES:
        table.add_row(state, str(status.by_state[state]))
    out.print(table)
    if status.errors:
        errors = Table(title="not sent or not delivered, by reason")
        for column in ("code", "meaning", "messages"):
            errors.add_column(column, justify="right" if column == "messages" else "left")
        for code, meaning, count in status.errors:
            errors.add_row(code, meaning, str(count))
        out.print(errors)
    _print_next_step(status)


def _print_next_step(status: api.CampaignStatus) -> None:
    """Why the campaign is where it is, and the exact command that moves it on."""
    name = status.campaign
    if status.senders:
        out.print(f"sending now: {', '.join(status.senders)}")
    if status.control == "cancel":
        out.print("cancelled: its unsent messages will never be sent")
    elif status.control == "pause":
        out.print(f"paused ({status.stop_reason}); to continue: campaigns send {name}")
    elif status.stop_reason and not status.senders:
        out.print(f"last send stopped: {status.stop_reason}")
        out.print(f"to continue: campaigns send {name}")
    elif status.by_state["sent"] and not status.senders:
        out.print(
            f"delivery not yet confirmed for {status.by_state['sent']}: campaigns reconcile {name}"
        )


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="One JSON object for scripts.")
@click.pass_obj
def status(settings: Settings, name: str, as_json: bool) -> None:
    """Counts per state, errors by code, and why the last send stopped.

    \b
    Example:
      campaigns status spring --json
    """
    result = api.status(settings, name)
    if as_json:
        click.echo(result.as_json())
    else:
        print_status(result)


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list for scripts.")
@click.pass_obj
def list_command(settings: Settings, as_json: bool) -> None:
    """All campaigns with their state, progress and created time.

    \b
    Example:
      campaigns list
    """
    rows = api.list_campaigns(settings)
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], ensure_ascii=False))
        return
    table = Table(title="campaigns")
    for column in ("campaign", "state", "done", "created (Asia/Shanghai)"):
        table.add_column(column, justify="right" if column == "done" else "left")
    for row in rows:
        created = row.created_at.replace(tzinfo=UTC).astimezone(SHANGHAI)
        table.add_row(
            row.campaign, row.state, f"{row.done}/{row.total}", f"{created:%Y-%m-%d %H:%M}"
        )
    out.print(table)


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


@cli.command()
@click.pass_obj
def balance(settings: Settings) -> None:
    """The account's remaining SMS count.

    \b
    Example:
      ZHENZI_APP_ID=... ZHENZI_APP_SECRET=... campaigns balance
    """
    out.print(f"balance: {api.balance(settings)} SMS")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, help="0 picks a free port.")
@click.option("--app-id", default="demo-app", show_default=True)
@click.option("--app-secret", default="demo-secret", show_default=True)
@click.option("--balance", default=1_000_000, show_default=True, help="SMS segments available.")
@click.option("--latency-ms", default=0.0, show_default=True)
@click.option(
    "--ledger", type=click.Path(dir_okay=False), help="Append a JSON line per accepted SMS."
)
@click.option("--daily-limit", default=10, show_default=True, help="SMS per number per day (109).")
@click.option("--delivery-delay", default=1.5, show_default=True, help="Seconds until final.")
@click.option("--undelivered", default=0.05, show_default=True, help="Share undelivered.")
@click.option(
    "--visibility-delay",
    default=0.0,
    show_default=True,
    help="Seconds before a new SMS can be looked up.",
)
@click.option("--fail-1000", default=0.0, show_default=True, help="Share answered code 1000.")
@click.option("--fail-5xx", default=0.0, show_default=True, help="Share answered HTTP 502.")
@click.option(
    "--drop",
    default=0.0,
    show_default=True,
    help="Share accepted, then the connection dropped with no reply.",
)
@click.option(
    "--slow",
    default=0.0,
    show_default=True,
    help="Share accepted, then the reply delayed by --slow-seconds.",
)
@click.option("--slow-seconds", default=15.0, show_default=True)
@click.option("--seed", type=int, default=None, help="Reproducible faults.")
def sandbox(**options) -> None:
    """Serve a faithful simulator of the provider's HTTP API until interrupted.

    \b
    Example:
      campaigns sandbox --port 8080 --ledger ledger.jsonl --fail-5xx 0.05
      ZHENZI_API_URL=http://127.0.0.1:8080 ZHENZI_APP_ID=demo-app \\
        ZHENZI_APP_SECRET=demo-secret campaigns send spring
    """
    from campaigns.provider.sandbox import Sandbox, SandboxConfig

    config = SandboxConfig(
        host=options["host"],
        port=options["port"],
        app_id=options["app_id"],
        app_secret=options["app_secret"],
        balance=options["balance"],
        latency_ms=options["latency_ms"],
        ledger=options["ledger"],
        daily_limit=options["daily_limit"],
        delivery_delay_s=options["delivery_delay"],
        undelivered_share=options["undelivered"],
        visibility_delay_s=options["visibility_delay"],
        fail_1000=options["fail_1000"],
        fail_5xx=options["fail_5xx"],
        drop_after_accept=options["drop"],
        slow_reply=options["slow"],
        slow_reply_s=options["slow_seconds"],
        seed=options["seed"],
    )
    server = Sandbox(config)
    try:
        server.start()
    except OSError as exc:
        raise UserError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from None
    click.echo(server.url, nl=True)
    sys.stdout.flush()
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@cli.command()
@click.option(
    "--folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to leave the database, ledger and reports (default: demo-output/TIME).",
)
def demo(folder: Path | None) -> None:
    """Run a whole campaign against a built-in sandbox: import, send, reconcile, report.

    \b
    Example:
      campaigns demo
    """
    from campaigns.demo import new_folder, run_demo

    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    folder = folder or new_folder()
    out.print(f"demo folder: {folder}")
    result = run_demo(folder, say=out.print)
    print_status(result.status)
    for path in result.reports:
        out.print(f"report: {path}")
    out.print(f"sandbox ledger (what the phones received): {result.ledger}")
    out.print(
        f"database: {folder / 'campaigns.db'}  (try: campaigns --db "
        f"sqlite:///{folder / 'campaigns.db'} status demo)"
    )
