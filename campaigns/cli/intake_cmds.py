"""import and suppress: what goes into a campaign, and who is never texted."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

import click

from campaigns import api
from campaigns.cli.base import cli, err, labelled, out, progress
from campaigns.config import Settings
from campaigns.errors import UserError
from campaigns.schedule import SHANGHAI


@cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--campaign", "-c", required=True, help="Campaign name (created if new).")
@click.option("--message", "-m", help="Text with {column} placeholders.")
@click.option("--template-file", type=click.Path(dir_okay=False), help="Read the text from a file.")
@click.option("--template-id", help="Send through this approved v2 template instead of free text.")
@click.option("--params", help='v2 templateParams per row, e.g. "{姓名},{订单号}".')
@click.option("--phone-column", help="Header of the phone column (found by name otherwise).")
@click.option("--encoding", help="Force the CSV encoding (utf-8, gbk, gb18030, ...).")
@click.option("--sheet", help="Sheet of a workbook (.xlsx, .xls, .ods; default: the first).")
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
    """Import recipients from a CSV, XLSX, XLS or ODS file into a campaign.

    \b
    Example:
      campaigns import sample_data/recipients.csv --campaign demo \\
        --message "【榛子演示】{姓名}您好,订单{订单号}已发货" --rejects rejects.xlsx
      campaigns import list.xlsx -c otp --template-id 1001 --params "{验证码},5" --dry-run
    """
    if not any(options[key] for key in ("message", "template_file", "template_id")):
        raise UserError("give the text: --message, --template-file or --template-id with --params")
    with progress("importing") as show:
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
        "phone_column": summary.phone_column,
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
        "earlier_files": summary.earlier_files,
        "campaign_total": summary.campaign_total,
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
    out.print(f"  phone column  {summary.phone_column}")
    out.print(
        f"  accepted  {summary.accepted}: {summary.segments} SMS segments "
        f"(estimated cost {summary.cost} SMS); largest message "
        f"{summary.largest_characters} characters = {summary.largest} segments"
    )
    out.print(f"  rejected  {summary.rejected_total}")
    if summary.earlier_files:
        verb = "would be added" if summary.dry_run else "added"
        out.print(
            f"  {verb} to campaign {summary.campaign!r}, which already had "
            f"{', '.join(summary.earlier_files)}: {summary.campaign_total} recipients in all"
        )
    for reason, count in summary.rejected.items():
        out.print(f"    {count:>6}  {reason}: {api.reasons().get(reason.split(':')[0], reason)}")
    for warning in summary.warnings:
        err.print(labelled("warning:", "yellow", warning))
    if summary.dry_run:
        for text in summary.sample:
            out.print(f"  sample: {text}")
        if len(summary.rejects):
            out.print("  first rejects:")
            for row in summary.rejects.head(10).itertuples(index=False):
                out.print(f"    row {row.row}: {row.reason}")
        out.print("dry run: nothing was stored")


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
        added = row.added_at.replace(tzinfo=UTC).astimezone(SHANGHAI)
        out.print(f"{row.phone}  {added:%Y-%m-%d %H:%M} Asia/Shanghai  {row.reason}")
    out.print(f"{len(rows)} numbers suppressed")


def _print_change(change, verb: str) -> None:
    out.print(f"{change.changed} numbers {verb}")
    for given, reason in change.rejected:
        err.print(f"skipped {given!r}: {api.reasons().get(reason, reason)}")
