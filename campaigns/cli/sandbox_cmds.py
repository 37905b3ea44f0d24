"""sandbox and demo: the provider simulator, and a whole campaign against it."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from campaigns.cli.base import cli, out
from campaigns.cli.status_cmds import print_status
from campaigns.errors import UserError


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
