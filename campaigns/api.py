"""The library's front door: what the CLI calls, and what Python users call directly.

    from campaigns import api
    from campaigns.config import Settings
    settings = Settings.from_env(db_url="sqlite:///my.db")
    api.import_file(settings, "customers.xlsx", campaign="双十一", message="【店铺】{姓名}您好…")
    api.send(settings, "双十一")

Each command loads what only it needs when called: pandas for import, reports and the
suppression list, requests and the send and reconcile machinery for the commands that talk to
the provider. So `status` starts quickly, and `send` without pandas.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from campaigns import controls, overview
from campaigns.config import Settings
from campaigns.errors import (
    AccountBlocked,
    ConnectionProblem,
    SendStopped,
    TlsError,
    Transient,
    UserError,
)
from campaigns.overview import INSECURE, CampaignRow, CampaignStatus, content_warnings
from campaigns.send_settings import SendSettings, SendStart, merge
from campaigns.store import campaign_queries, control_queries
from campaigns.store.db import Store
from campaigns.store.models import (
    Campaign,
)

if TYPE_CHECKING:
    from campaigns.doctor import DoctorReport
    from campaigns.importing import ImportSummary
    from campaigns.provider.client import ZhenziClient
    from campaigns.reconcile import ReconcileProgress
    from campaigns.sending import SendOptions, SendPlan, SendProgress


def open_store(settings: Settings) -> Store:
    return Store(settings.db_url)


@contextmanager
def _store(settings: Settings) -> Iterator[Store]:
    store = open_store(settings)
    try:
        yield store
    finally:
        store.close()


def make_client(settings: Settings) -> ZhenziClient:
    if not settings.app_id or not settings.app_secret:
        raise UserError(
            "this command talks to the provider: give --app-id and --app-secret "
            "(or set ZHENZI_APP_ID and ZHENZI_APP_SECRET)"
        )
    # Imported here: requests and tenacity add ~60 ms to the start of every command.
    from campaigns.provider.client import ZhenziClient

    return ZhenziClient(
        settings.api_url,
        settings.app_id,
        settings.app_secret,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        visibility_wait=settings.lookup_wait,
        ca_bundle=settings.ca_bundle,
        insecure_tls=settings.insecure_tls,
    )


def _campaign_client(settings: Settings, store: Store, name: str, command: str) -> ZhenziClient:
    """The client for a command on a campaign; an ``--insecure-tls`` use goes in its history.

    The history is the campaign's list of warnings (shown by `import`, kept for good): one line
    per command and day, so a report can say that certificates went unchecked.
    """
    client = make_client(settings)
    if settings.insecure_tls:
        from sqlalchemy import select

        today = campaign_queries.utcnow()
        note = f"{command} on {today:%Y-%m-%d} (UTC) ran with --insecure-tls: {INSECURE}"
        campaign_id = campaign_queries.campaign_by_name(store, name).id
        with store.session.begin() as session:
            locked = select(Campaign).where(Campaign.id == campaign_id).with_for_update()
            campaign = session.execute(locked).scalar_one()
            known = json.loads(campaign.warnings or "[]")
            if note not in known:
                campaign.warnings = json.dumps([*known, note], ensure_ascii=False)
    return client


def reasons() -> dict[str, str]:
    """Import reject reason codes and their plain-English meaning."""
    from campaigns.reasons import REASONS

    return REASONS


# -- import ----


def import_file(settings: Settings, path: str | Path, **options) -> ImportSummary:
    """Read, validate and store a recipients file (see ``importing.import_file`` for options)."""
    from campaigns import importing

    with _store(settings) as store:
        return importing.import_file(store, path, **options)


# -- send, reconcile, balance ----


def start_send(
    settings: Settings,
    name: str,
    given: Mapping[str, object],
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> SendStart:
    """Decide how a send runs and store it with the campaign, before it starts.

    ``given`` holds only the options the user typed (raw text), on top of what is stored; a
    marketing text without 退订 is refused unless ``without_opt_out`` is on (stored or given).
    A dry run stores and refuses nothing.
    """
    from campaigns.schedule import shanghai_now

    with _store(settings) as store:
        campaign = campaign_queries.campaign_by_name(store, name)
        stored = SendSettings.from_json(campaign.send_settings)
        effective, changes = merge(stored, given, now or shanghai_now())
        warnings = content_warnings(campaign.warnings)
        if dry_run:
            return SendStart(effective, changes, resumed=stored is not None, warnings=warnings)
        if not effective.without_opt_out and _lacks_opt_out(campaign, effective, warnings):
            raise UserError(
                f"campaign {name!r} is marketing and its text has no opt-out (退订, e.g. 回T退订): "
                "carriers block such texts; import it again with one, or send it anyway with "
                "--without-opt-out"
            )
        campaign_queries.update_campaign(store, campaign.id, send_settings=effective.to_json())
    return SendStart(effective, changes, resumed=stored is not None, warnings=warnings)


def _lacks_opt_out(campaign: Campaign, sending: SendSettings, warnings: list[str]) -> bool:
    """Marketing without 退订: as import --marketing found it, or as `send --marketing` finds it."""
    if any(warning.startswith(NO_OPT_OUT) for warning in warnings):
        return True
    if not sending.marketing:
        return False
    from campaigns.intake.render import template_warnings  # loads pandas: only for --marketing

    found = template_warnings(campaign.template, marketing=True)
    return any(warning.startswith(NO_OPT_OUT) for warning in found)


# How the import's warning for a marketing text without 退订 begins (campaigns.intake.render).
NO_OPT_OUT = "marketing message without an opt-out phrase"


def send(settings: Settings, name: str, options: SendOptions | None = None) -> SendProgress:
    """Send (or resume) a campaign. Senders of one account share ``options.rate``.

    Without ``options``, the settings stored with the campaign (defaults if none). A refusal
    before the first message (balance, credentials, TLS) is recorded for `status` too.
    """
    from campaigns.sending import send_campaign

    with _store(settings) as store:
        campaign = campaign_queries.campaign_by_name(store, name)
        if options is None:
            options = (SendSettings.from_json(campaign.send_settings) or SendSettings()).options()
        try:
            return send_campaign(
                store,
                _campaign_client(settings, store, name, "send"),
                name,
                options,
                account=f"{settings.api_url}#{settings.app_id}",
            )
        except SendStopped as exc:
            _record_refusal(store, campaign.id, str(exc))
            raise
        except AccountBlocked as exc:
            _record_refusal(store, campaign.id, _refusal(exc), exc.code)
            raise
        except (TlsError, ConnectionProblem, Transient) as exc:
            _record_refusal(store, campaign.id, _refusal(exc))
            raise


def _refusal(exc: Exception) -> str:
    if isinstance(exc, AccountBlocked):
        return f"{exc}; {exc.advice}" if exc.advice else str(exc)
    if isinstance(exc, Transient):
        return f"the provider is unavailable: {exc}; try again later"
    return str(exc)


def _record_refusal(store: Store, campaign_id: int, why: str, code: int | None = None) -> None:
    """Why the send stopped, unless the run already recorded it (it clears it as it starts)."""
    with store.session.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is not None and campaign.stop_reason is None:
            campaign.stop_reason = why
            campaign.stop_code = code


def send_plan(settings: Settings, name: str) -> SendPlan:
    """What `send` would do now, and whether the balance covers it (nothing is sent)."""
    from campaigns.sending import plan

    with _store(settings) as store:
        result = plan(store, name)
    result.balance = make_client(settings).balance()
    return result


def send_tests(settings: Settings, name: str, numbers: Sequence[str]) -> list[controls.TestResult]:
    with _store(settings) as store:
        client = _campaign_client(settings, store, name, "send --test")
        return controls.send_tests(store, client, name, numbers)


def reconcile(settings: Settings, name: str, **kwargs) -> ReconcileProgress:
    """One pass: look up every sent message that has no final answer yet."""
    from campaigns.reconcile import reconcile_campaign

    with _store(settings) as store:
        client = _campaign_client(settings, store, name, "reconcile")
        return reconcile_campaign(store, client, name, **kwargs)


def reconcile_until_final(
    settings: Settings,
    name: str,
    *,
    sleep: Callable[[float], None] | None = None,
    on_pass: Callable[[int, ReconcileProgress, float | None], None] | None = None,
    **kwargs,
) -> ReconcileProgress:
    """Passes on a backoff schedule until every message is final or expired (``--wait``)."""
    from campaigns import reconcile as reconciling

    with _store(settings) as store:
        client = _campaign_client(settings, store, name, "reconcile")
        return reconciling.reconcile_until_final(
            lambda: reconciling.reconcile_campaign(store, client, name, **kwargs),
            sleep=sleep or time.sleep,
            on_pass=on_pass,
        )


def balance(settings: Settings) -> int:
    return make_client(settings).balance()


def doctor(
    settings: Settings,
    *,
    test_number: str | None = None,
    message: str | None = None,
    watch: float = 60.0,
    save: str | Path | None = None,
) -> DoctorReport:
    """Check the host, TLS, credentials and balance; with a test number, send ONE SMS and
    measure how long lookups take to show it (see ``campaigns.doctor``)."""
    from campaigns.doctor import DEFAULT_TEXT, Exchanges, run_doctor

    client = make_client(settings)
    exchanges = Exchanges(settings)
    client.on_reply = exchanges.record
    report = run_doctor(
        settings, client, test_number=test_number, message=message or DEFAULT_TEXT, watch=watch
    )
    if save is not None:
        exchanges.save(Path(save), report)
    return report


# -- controls ----


def pause(settings: Settings, name: str) -> None:
    with _store(settings) as store:
        controls.pause(store, name)


def cancel(settings: Settings, name: str) -> int:
    with _store(settings) as store:
        return controls.cancel(store, name)


def retry(
    settings: Settings,
    name: str,
    states: Sequence[str] = controls.RETRYABLE,
    codes: Sequence[int] = (),
) -> int:
    with _store(settings) as store:
        return controls.retry(store, name, states, codes)


def suppress(settings: Settings, items: Iterable[str], reason: str) -> controls.SuppressionChange:
    with _store(settings) as store:
        return controls.suppress(store, items, reason)


def unsuppress(settings: Settings, items: Iterable[str]) -> controls.SuppressionChange:
    with _store(settings) as store:
        return controls.unsuppress(store, items)


def suppressions(settings: Settings) -> list:
    with _store(settings) as store:
        return control_queries.list_suppressions(store)


# -- status and reports ----


def status(settings: Settings, name: str) -> CampaignStatus:
    with _store(settings) as store:
        return overview.campaign_status(store, name)


def list_campaigns(settings: Settings) -> list[CampaignRow]:
    """Every campaign with its state and progress (final messages of all)."""
    with _store(settings) as store:
        return overview.campaign_rows(store)


def report(
    settings: Settings,
    name: str,
    output: str | Path,
    states: list[str] | None = None,
    *,
    mask: bool = False,
    rejects_only: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write the campaign's report (.csv, .xlsx or .html); returns the number of recipient rows.

    The summary always covers the whole campaign; ``states`` filters the recipient rows only.
    Rows stream from the database, so memory stays flat; ``on_progress(written, total)`` hears
    of every chunk.
    """
    from campaigns.reports import ReportData, StoredCampaign, write_report

    counts = status(settings, name)
    with _store(settings) as store:
        campaign = campaign_queries.campaign_by_name(store, name)
        data = ReportData(
            frame=None,
            status=counts,
            template=campaign.template,
            states=states,
            warnings=json.loads(campaign.warnings or "[]"),
            campaign=StoredCampaign(store.engine, campaign.id),
        )
        return write_report(
            data, Path(output), mask=mask, rejects_only=rejects_only, on_progress=on_progress
        )
