"""sandbox and demo: the provider simulator, and a whole campaign against it."""

from __future__ import annotations

import shlex
import signal
import sys
from pathlib import Path
from typing import Any

import click

from campaigns.cli.base import cli, out
from campaigns.cli.status_cmds import print_status
from campaigns.errors import UserError
from campaigns.provider.sandbox import SHAPES, UNKNOWN_REPLIES, Sandbox, SandboxConfig


def _choice(name: str, choices: tuple[str, ...], default: str, text: str) -> Any:
    return click.option(
        name, type=click.Choice(choices), default=default, show_default=True, help=text
    )


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, help="0 picks a free port.")
@click.option("--app-id", default="demo-app", show_default=True, help="The appId to accept.")
@click.option(
    "--app-secret", default="demo-secret", show_default=True, help="The appSecret to accept."
)
@click.option("--balance", default=1_000_000, show_default=True, help="SMS segments available.")
@click.option("--latency-ms", default=0.0, show_default=True, help="Delay added to every reply.")
@click.option(
    "--ledger", type=click.Path(dir_okay=False), help="Append a JSON line per accepted SMS."
)
@_choice(
    "--shape",
    SHAPES,
    SandboxConfig.shape,
    "Reply shapes: 'real' as public code shows the provider sends them (lookup data a JSON "
    "object of six fields); 'rich' the sandbox's older guess (lookup data a JSON string, plus "
    "statusTime, errorMsg and segments).",
)
@_choice(
    "--unknown-reply",
    UNKNOWN_REPLIES,
    SandboxConfig.unknown_reply,
    "How a lookup of an unknown (or not yet visible) messageId answers: code 0 with data "
    'null, "", {} or [], code 100, or a random one of these per lookup.',
)
@click.option(
    "--daily-limit",
    type=click.IntRange(min=0),
    default=None,
    help="SMS per number per Shanghai day before code 109. Off by default (and with 0), as for "
    "an account that sets no limit.",
)
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
@click.option(
    "--slow-seconds", default=15.0, show_default=True, help="How late a --slow reply comes."
)
@click.option("--seed", type=int, default=None, help="Reproducible faults.")
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False),
    help="Serve HTTPS with this PEM certificate chain; the printed URL becomes https://.",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False),
    help="The certificate's PEM private key (omit when it is in the --tls-cert file).",
)
@click.option(
    "--max-body",
    type=click.IntRange(min=1),
    default=SandboxConfig.max_body_bytes,
    show_default=True,
    help="Largest request body in bytes; a larger Content-Length gets HTTP 400.",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=SandboxConfig.idle_timeout_s,
    show_default=True,
    help="Seconds before a silent connection is closed.",
)
def sandbox(**options) -> None:
    """Serve a faithful simulator of the provider's HTTP API until interrupted.

    Prints its base URL on the first line of output. Malformed requests (bad Content-Length,
    a body over --max-body, a body that is not UTF-8) get HTTP 400 and the server goes on.

    \b
    Example:
      campaigns sandbox --port 8080 --ledger ledger.jsonl --fail-5xx 0.05
      ZHENZI_API_URL=http://127.0.0.1:8080 ZHENZI_APP_ID=demo-app \\
        ZHENZI_APP_SECRET=demo-secret campaigns send spring
      campaigns sandbox --tls-cert cert.pem --tls-key key.pem --unknown-reply random
    """
    if options["tls_key"] and not options["tls_cert"]:
        raise click.UsageError("--tls-key needs --tls-cert")
    config = SandboxConfig(
        host=options["host"],
        port=options["port"],
        app_id=options["app_id"],
        app_secret=options["app_secret"],
        balance=options["balance"],
        latency_ms=options["latency_ms"],
        ledger=options["ledger"],
        shape=options["shape"],
        unknown_reply=options["unknown_reply"],
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
        tls_cert=options["tls_cert"],
        tls_key=options["tls_key"],
        max_body_bytes=options["max_body"],
        idle_timeout_s=options["idle_timeout"],
    )
    server = Sandbox(config)
    try:
        server.start()
    except ValueError as exc:
        raise UserError(str(exc)) from None
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
    from campaigns.demo import command_hint, new_folder, run_demo

    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    folder = folder or new_folder()
    out.print(f"demo folder: {folder}")
    result = run_demo(folder, say=out.print)
    print_status(result.status)
    for path in result.reports:
        out.print(f"report: {path}")
    out.print(f"sandbox ledger (what the phones received): {result.ledger}")
    database = folder / "campaigns.db"
    command, advice = command_hint()
    db_option = shlex.quote(f"sqlite:///{database}")
    out.print(f"database: {database}  (try: {command} --db {db_option} status demo{advice})")
