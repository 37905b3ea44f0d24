"""The ``campaigns`` group: global options, one-line errors and exit codes, progress bars."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.text import Text
from sqlalchemy.exc import DBAPIError

from campaigns.config import DB_LOCATION_HELP, DEFAULT_API_URL, Settings, default_db_url
from campaigns.errors import (
    AccountBlocked,
    CampaignsError,
    SendStopped,
    StopReason,
    Transient,
    UserError,
)

EXIT_USER = 1
EXIT_STOPPED = 2
EXIT_INTERRUPTED = 130
# Why a send stopped → its exit code: 130 only for Ctrl-C / SIGTERM, as a shell expects.
_STOP_EXIT_CODES = {
    StopReason.ACCOUNT: EXIT_STOPPED,
    StopReason.PROVIDER_DOWN: EXIT_STOPPED,
    StopReason.CONNECTION: EXIT_STOPPED,
    StopReason.CANCELLED: EXIT_STOPPED,
    StopReason.OVER_BUDGET: EXIT_STOPPED,
    StopReason.PAUSED: EXIT_STOPPED,
    StopReason.SCHEDULE: EXIT_STOPPED,
    StopReason.INTERRUPTED: EXIT_INTERRUPTED,
    StopReason.BALANCE: EXIT_STOPPED,
}

# C0 and C1 control characters (but newline and tab), DEL, and the bidirectional overrides that
# reorder what a terminal shows: a file or a campaign name must not move the cursor, retitle the
# window or disguise a number.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """User data made safe for a terminal: every control character shown as its escape."""
    return _INVISIBLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class _UserDataConsole(Console):
    """A console that prints user data as it is: no markup, no highlighting, controls visible.

    Every string printed, table cells and titles included, passes through ``render_str``; with
    markup off, a campaign named ``[/x]`` is just text.
    """

    def render_str(self, text: str, **kwargs) -> Text:
        return super().render_str(visible(text), **kwargs)


out = _UserDataConsole(highlight=False, markup=False, soft_wrap=True)
err = _UserDataConsole(stderr=True, highlight=False, markup=False, soft_wrap=True)


def labelled(label: str, style: str, message: str) -> Text:
    """``error: …`` / ``warning: …`` with the label styled and the message taken literally."""
    return Text.assemble((label, style), " ", visible(message))


def _fail(message: str, code: int) -> None:
    if code == EXIT_INTERRUPTED:  # the operator's own Ctrl-C: not an error
        err.print(message, soft_wrap=True)
    else:
        err.print(labelled("error:", "bold red", message), soft_wrap=True)
    sys.exit(code)


def _as_input_mistake(exc: click.UsageError) -> click.UsageError:
    """click exits 2 for a usage mistake; our table says 1 for every input mistake."""
    setattr(exc, "exit_code", EXIT_USER)  # noqa: B010  (an instance value over click's class one)
    return exc


class _Group(click.Group):
    """Turns the library's errors into one line and an exit code: no traceback for user mistakes."""

    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:  # a global option's mistake: input, like any other
            raise _as_input_mistake(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _as_input_mistake(exc) from None
        except SendStopped as exc:
            _fail(str(exc), _STOP_EXIT_CODES[exc.reason])
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
    default=default_db_url,
    help=DB_LOCATION_HELP,
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
    default=Settings.read_timeout,
    show_default=True,
    help="Seconds to wait for a reply (env ZHENZI_READ_TIMEOUT).",
)
@click.option(
    "--lookup-wait",
    envvar="ZHENZI_LOOKUP_WAIT",
    type=float,
    default=Settings.lookup_wait,
    show_default=True,
    help="Seconds before a message whose outcome is unknown is looked up (env ZHENZI_LOOKUP_WAIT).",
)
@click.option(
    "--ca-bundle",
    envvar="ZHENZI_CA_BUNDLE",
    type=click.Path(dir_okay=False),
    default=None,
    help="PEM file of CAs trusted instead of the default store, e.g. a corporate TLS proxy's "
    "(env ZHENZI_CA_BUNDLE).",
)
@click.option(
    "--insecure-tls",
    envvar="ZHENZI_INSECURE_TLS",
    is_flag=True,
    help="Do not check the provider's certificate (only for a truly broken one): warned on "
    "every command, noted in the campaign (env ZHENZI_INSECURE_TLS=1).",
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
    ca_bundle: str | None,
    insecure_tls: bool,
) -> None:
    """Bulk SMS campaigns for Zhenzi (榛子云短信): import, send exactly once, reconcile, report.

    \b
    Example:
      campaigns import customers.xlsx --campaign spring --message "【店铺】{姓名}您好…"
      campaigns send spring --rate 50
      campaigns reconcile spring && campaigns report spring --output spring.xlsx
    """
    ctx.meta["quiet"] = quiet
    # Click has read the environment (once); Settings.from_env is for Python callers.
    ctx.obj = Settings(
        db_url=db,
        api_url=api_url,
        app_id=app_id,
        app_secret=Settings.secret(app_secret),
        read_timeout=read_timeout,
        lookup_wait=lookup_wait,
        ca_bundle=ca_bundle or None,
        insecure_tls=insecure_tls,
    )


# -- progress ----


@contextmanager
def progress(title: str) -> Iterator[Callable[[int, int | None, str], None]]:
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
        TextColumn("left"),  # the time column alone read as a clock
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(title, total=None, detail="")
        yield lambda done, total, detail: bar.update(
            task, completed=done, total=total, detail=detail
        )
