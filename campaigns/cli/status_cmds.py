"""status, list, balance: what a campaign and the account look like now."""

from __future__ import annotations

import json
import shlex
from datetime import UTC

import click
from rich.table import Table

from campaigns import api
from campaigns.cli.base import cli, out
from campaigns.config import Settings
from campaigns.schedule import SHANGHAI
from campaigns.send_settings import resume_command
from campaigns.store.db import masked
from campaigns.store.models import STATES


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
    for text, count in status.unrecognised_statuses.items():
        out.print(f"{count} sent messages carry the unrecognised status {text!r}: please report it")
    for use in status.insecure_tls_uses:
        out.print(f"history: {use}")
    for warning in status.warnings:
        out.print(f"warning: {warning}")
    if status.send_settings:
        out.print(f"send settings (stored): {status.send_settings.as_options()}")
    _print_next_step(status)


def _print_next_step(status: api.CampaignStatus) -> None:
    """Why the campaign is where it is, and the exact command that moves it on."""
    name = status.campaign
    resume = resume_command(name)
    if status.senders:
        out.print(f"sending now: {', '.join(status.senders)}")
    if status.control == "cancel":
        out.print("cancelled: its unsent messages will never be sent")
    elif status.control == "pause":
        out.print(f"paused ({status.stop_reason}); to continue: {resume}")
    elif status.stop_reason and not status.senders:
        out.print(f"last send stopped: {status.stop_reason}")
        out.print(f"to continue: {resume}" + _with_settings(status))
    elif status.by_state["sent"] and not status.senders:
        out.print(
            f"delivery not yet confirmed for {status.by_state['sent']}: "
            f"campaigns reconcile {shlex.quote(name)}"
        )


def _with_settings(status: api.CampaignStatus) -> str:
    return " (it resumes with the stored send settings)" if status.send_settings else ""


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
    out.print(f"database: {masked(settings.db_url)}")
    table = Table(title="campaigns")
    for column in LIST_COLUMNS:
        table.add_column(column, justify="left" if column in ("campaign", "state") else "right")
    table.add_column("created (Asia/Shanghai)")
    for row in rows:
        created = row.created_at.replace(tzinfo=UTC).astimezone(SHANGHAI)
        figures = [str(getattr(row, column)) for column in LIST_COLUMNS[2:]]
        table.add_row(row.campaign, row.state, *figures, f"{created:%Y-%m-%d %H:%M}")
    out.print(table)


LIST_COLUMNS = ("campaign", "state", "sent", "final", "total", "rejected")


@cli.command()
@click.pass_obj
def balance(settings: Settings) -> None:
    """The account's remaining SMS count.

    \b
    Example:
      ZHENZI_APP_ID=... ZHENZI_APP_SECRET=... campaigns balance
    """
    out.print(f"balance: {api.balance(settings)} SMS")
