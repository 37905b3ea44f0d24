"""The library's front door: what the CLI calls, and what Python users call directly.

    from campaigns import api
    from campaigns.config import Settings
    settings = Settings.from_env(db_url="sqlite:///my.db")
    api.import_file(settings, "customers.xlsx", campaign="双十一", message="【店铺】{姓名}您好…")
    api.send(settings, "双十一")
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from campaigns import importing
from campaigns.config import Settings
from campaigns.errors import UserError
from campaigns.importing import REASONS, ImportSummary
from campaigns.provider.client import ZhenziClient
from campaigns.provider.codes import describe
from campaigns.reconcile import ReconcileProgress, reconcile_campaign
from campaigns.reports import write_report
from campaigns.sending import SendOptions, SendProgress, send_campaign
from campaigns.store import queries
from campaigns.store.db import Store


def open_store(settings: Settings) -> Store:
    return Store(settings.db_url)


def make_client(settings: Settings) -> ZhenziClient:
    if not settings.app_id or not settings.app_secret:
        raise UserError(
            "this command talks to the provider: give --app-id and --app-secret "
            "(or set ZHENZI_APP_ID and ZHENZI_APP_SECRET)"
        )
    return ZhenziClient(
        settings.api_url,
        settings.app_id,
        settings.app_secret,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        visibility_wait=settings.lookup_wait,
        ca_bundle=settings.ca_bundle,
    )


# -- import ----


def import_file(settings: Settings, path: str | Path, **options) -> ImportSummary:
    """Read, validate and store a recipients file (see ``importing.import_file`` for options)."""
    store = open_store(settings)
    try:
        return importing.import_file(store, path, **options)
    finally:
        store.close()


# -- send, reconcile, balance ----


def send(settings: Settings, name: str, options: SendOptions | None = None) -> SendProgress:
    return send_campaign(
        open_store(settings), make_client(settings), name, options or SendOptions()
    )


def reconcile(settings: Settings, name: str, **kwargs) -> ReconcileProgress:
    return reconcile_campaign(open_store(settings), make_client(settings), name, **kwargs)


def balance(settings: Settings) -> int:
    return make_client(settings).balance()


# -- status and reports ----


@dataclass
class CampaignStatus:
    campaign: str
    total: int
    by_state: dict[str, int]
    errors: list[tuple[str, str, int]]  # (code or reason, meaning, count)
    stop_reason: str | None
    sender: str | None
    created_at: object = None
    started_at: object = None
    finished_at: object = None

    def as_json(self) -> str:
        return json.dumps(
            {"campaign": self.campaign, "total": self.total, "by_state": self.by_state},
            ensure_ascii=False,
        )


def status(settings: Settings, name: str) -> CampaignStatus:
    store = open_store(settings)
    campaign = queries.campaign_by_name(store, name)
    by_state = queries.counts_by_state(store, campaign.id)
    errors = []
    for code, reason, count in queries.errors_by_code(store, campaign.id):
        if code is not None:
            errors.append((str(code), describe(code).meaning, count))
        else:
            errors.append((reason, REASONS.get(reason, reason), count))
    store.close()
    return CampaignStatus(
        campaign=name,
        total=sum(by_state.values()),
        by_state=by_state,
        errors=errors,
        stop_reason=campaign.stop_reason,
        sender=campaign.sender,
        created_at=campaign.created_at,
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
    )


def report(
    settings: Settings, name: str, output: str | Path, states: list[str] | None = None
) -> int:
    """Write one row per recipient to ``output`` (.csv or .xlsx); returns the number of rows."""
    store = open_store(settings)
    campaign = queries.campaign_by_name(store, name)
    frame = queries.report_frame(store, campaign.id, states)
    store.close()
    return write_report(frame, Path(output))
