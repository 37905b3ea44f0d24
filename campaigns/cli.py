"""The command line: parse options, call ``campaigns.api``, print. Decisions live in the library.

Exit codes: 0 done, 1 user error, 2 stopped for an account or provider reason, 130 interrupted.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from campaigns import api
from campaigns.config import DEFAULT_API_URL, DEFAULT_DB, Settings
from campaigns.errors import AccountBlocked, CampaignsError, SendStopped, Transient, UserError
from campaigns.sending import SendOptions
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
@click.pass_context
def cli(
    ctx: click.Context,
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
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    cli(prog_name="campaigns")


# -- progress ----


@contextmanager
def _progress(title: str, total: int) -> Iterator[Callable[[int, str], None]]:
    """A bar on a terminal, a plain line every few updates otherwise."""
    if not err.is_terminal:
        last = [-1.0]

        def line(done: int, detail: str) -> None:
            if done == total or done - last[0] >= max(total / 10, 1):
                last[0] = done
                err.print(f"{title}: {done}/{total} {detail}")

        yield line
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(title, total=total, detail="")
        yield lambda done, detail: bar.update(task, completed=done, detail=detail)


# -- commands ----


@cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--campaign", "-c", required=True, help="Campaign name (created if new).")
@click.option("--message", "-m", required=True, help="Text with {column} placeholders.")
@click.option("--phone-column", help="Header of the phone column (found by name otherwise).")
@click.option("--encoding", help="Force the CSV encoding (utf-8, gbk, ...).")
@click.option("--sheet", help="XLSX sheet name (default: the first).")
@click.pass_obj
def import_command(
    settings: Settings,
    file: Path,
    campaign: str,
    message: str,
    phone_column: str | None,
    encoding: str | None,
    sheet: str | None,
) -> None:
    """Import recipients from a CSV or XLSX file into a campaign.

    \b
    Example:
      campaigns import sample_data/recipients.csv --campaign demo \\
        --message "【榛子演示】{姓名}您好,订单{订单号}已发货"
    """
    summary = api.import_file(
        settings,
        file,
        campaign=campaign,
        message=message,
        phone_column=phone_column,
        encoding=encoding,
        sheet=sheet,
    )
    out.print(f"{summary.source}: {summary.rows} rows → campaign {summary.campaign!r}")
    out.print(
        f"  accepted  {summary.accepted}  ({summary.segments} SMS segments, "
        f"largest message {summary.largest} segments)"
    )
    out.print(f"  rejected  {summary.rejected_total}")
    for reason, count in summary.rejected.items():
        out.print(f"    {count:>6}  {reason}: {api.REASONS.get(reason, reason)}")


@cli.command()
@click.argument("name")
@click.option("--rate", type=float, default=None, help="Messages per second (default: unlimited).")
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True)
@click.pass_obj
def send(settings: Settings, name: str, rate: float | None, concurrency: int) -> None:
    """Send the campaign's pending messages; run again to resume after any stop.

    \b
    Example:
      campaigns send spring --rate 50 --concurrency 8
    """
    status = api.status(settings, name)
    todo = status.by_state["pending"] + status.by_state["sending"]
    with _progress("sending", todo) as show:
        options = SendOptions(
            rate=rate,
            concurrency=concurrency,
            on_progress=lambda p: show(p.done, f"failed {p.failed}"),
        )
        result = api.send(settings, name, options)
    out.print(
        f"sent {result.sent}, failed {result.failed}"
        + (
            f", confirmed by lookup {result.confirmed_by_lookup}"
            if result.confirmed_by_lookup
            else ""
        )
        + (
            f", outcome unknown {result.unknown} (run send again to resolve)"
            if result.unknown
            else ""
        )
    )


@cli.command()
@click.argument("name")
@click.option("--rate", type=float, default=None, help="Lookups per second (default: unlimited).")
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True)
@click.pass_obj
def reconcile(settings: Settings, name: str, rate: float | None, concurrency: int) -> None:
    """Look up every sent message and record delivered / undelivered.

    \b
    Example:
      campaigns reconcile spring
    """
    total = api.status(settings, name).by_state["sent"]
    with _progress("reconciling", total) as show:
        result = api.reconcile(
            settings,
            name,
            rate=rate,
            concurrency=concurrency,
            on_progress=lambda p: show(p.done, ""),
        )
    out.print(
        f"delivered {result.delivered}, undelivered {result.undelivered}, "
        f"not final yet {result.still_pending + result.not_found}"
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
    if status.stop_reason:
        out.print(f"last send stopped: {status.stop_reason}")
        out.print(f"to continue: campaigns send {status.campaign}")


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


@cli.command()
@click.argument("name")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="FILE.csv or FILE.xlsx",
)
@click.option("--state", "states", help="Only these states, e.g. failed,undelivered.")
@click.pass_obj
def report(settings: Settings, name: str, output: Path, states: str | None) -> None:
    """Write one row per recipient to a CSV or XLSX file.

    \b
    Example:
      campaigns report spring --output spring.xlsx
    """
    chosen = [s.strip() for s in states.split(",")] if states else None
    unknown = sorted(set(chosen or ()) - set(STATES))
    if unknown:
        raise UserError(
            f"--state: unknown state {', '.join(unknown)} (states: {', '.join(STATES)})"
        )
    rows = api.report(settings, name, output, chosen)
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
