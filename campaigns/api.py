"""The library's front door: what the CLI calls, and what Python users call directly.

from campaigns import api
from campaigns.config import Settings
settings = Settings.from_env(db_url="sqlite:///my.db")
api.import_file(settings, "customers.xlsx", campaign="双十一", message="【店铺】{姓名}您好…")
api.send(settings, "双十一", rate=50)
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from campaigns import ids
from campaigns.config import Settings
from campaigns.errors import UserError
from campaigns.intake.phones import REASONS as PHONE_REASONS
from campaigns.intake.phones import normalise_phones
from campaigns.intake.read import read_recipients
from campaigns.intake.render import REASONS as RENDER_REASONS
from campaigns.intake.render import render, too_long, utf16_lengths
from campaigns.provider.client import ZhenziClient
from campaigns.provider.codes import describe
from campaigns.reconcile import ReconcileProgress, reconcile_campaign
from campaigns.reports import write_report
from campaigns.sending import SendOptions, SendProgress, send_campaign
from campaigns.store import queries
from campaigns.store.db import Store
from campaigns.store.models import INVALID, PENDING, Campaign

REASONS = {**PHONE_REASONS, **RENDER_REASONS}


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
        ca_bundle=settings.ca_bundle,
    )


# -- import ----


@dataclass
class ImportSummary:
    campaign: str
    source: str
    rows: int
    accepted: int
    rejected: dict[str, int] = field(default_factory=dict)
    segments: int = 0
    largest: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def _rejection_reasons(
    frame: pd.DataFrame, phone_reason: pd.Series, render_reason: pd.Series, content: pd.Series
) -> pd.Series:
    """The first reason each row fails for ("" when it is fine), in the order a user fixes them."""
    reason = phone_reason.where(phone_reason != "", render_reason)
    return reason.where(reason != "", too_long(content).map({True: "too_long", False: ""}))


def _mark_duplicates(
    phone: pd.Series, reason: pd.Series, rows: pd.Series, earlier: dict[str, int]
) -> tuple[pd.Series, pd.Series]:
    """Reject a number already in the campaign or on an earlier row; say which row has it."""
    valid = reason == ""
    first_row = rows[valid].groupby(phone[valid]).transform("min")
    in_file = valid & (rows != first_row.reindex(rows.index))
    before = valid & phone.isin(earlier.keys())
    duplicate = in_file | before
    first_seen = phone.map(earlier).where(before, first_row.reindex(rows.index))
    detail = ("same number as row " + first_seen.astype("Int64").astype(str)).where(duplicate, "")
    return reason.mask(duplicate, "duplicate"), detail


def import_file(
    settings: Settings,
    path: str | Path,
    *,
    campaign: str,
    message: str,
    phone_column: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
) -> ImportSummary:
    """Read, validate and store a recipients file as campaign ``campaign``, in one transaction."""
    recipients = read_recipients(path, phone_column=phone_column, encoding=encoding, sheet=sheet)
    frame = recipients.frame
    content, render_reason = render(message, frame)
    phone, phone_reason = normalise_phones(frame[recipients.phone_column])
    reason = _rejection_reasons(frame, phone_reason, render_reason, content)
    rows = pd.Series(recipients.row_numbers, index=frame.index).astype("int64")
    store = open_store(settings)
    with store.session.begin() as session:
        target = _campaign_for_import(session, campaign, message, recipients.source)
        earlier = queries.existing_phones(session, target.id)
        reason, detail = _mark_duplicates(phone, reason, rows, earlier)
        accepted = reason == ""
        first_sequence = queries.accepted_count(session, target.id) + 1
        table = pd.DataFrame(
            {
                "campaign_id": target.id,
                "row_number": rows,
                "raw_phone": frame[recipients.phone_column].astype(object),
                "phone": phone.where(accepted, None).astype(object),
                "content": content.where(accepted, "").astype(object),
                "segments": segments_of(content).where(accepted, 0).astype("int64"),
                "state": accepted.map({True: PENDING, False: INVALID}),
                "reason": reason.where(~accepted, None).astype(object),
                "error_text": _reason_text(reason, detail).where(~accepted, None).astype(object),
                "attempts": 0,
                "fields": frame.to_json(
                    orient="records", lines=True, force_ascii=False
                ).splitlines(),
                "queued_at": queries.utcnow(),
                "message_id": None,
            }
        )
        table.loc[accepted, "message_id"] = ids.message_ids(
            target.token, first_sequence, int(accepted.sum())
        ).to_numpy()
        queries.insert_messages(session, table.to_dict("records"))
    store.close()
    counted = Counter(reason[~accepted])
    return ImportSummary(
        campaign=campaign,
        source=recipients.source,
        rows=len(frame),
        accepted=int(accepted.sum()),
        rejected=dict(counted.most_common()),
        segments=int(table["segments"].sum()),
        largest=int(segments_of(content[accepted]).max()) if accepted.any() else 0,
    )


def segments_of(content: pd.Series) -> pd.Series:
    """SMS segments per message: 1 up to 70 UTF-16 units, else 67 units per part (vectorised)."""
    units = utf16_lengths(content)
    parts = -(-units // 67)
    return parts.where(units > 70, (units > 0).astype("int64")).astype("int64")


def _reason_text(reason: pd.Series, detail: pd.Series) -> pd.Series:
    text = reason.map(lambda code: REASONS.get(code.split(":")[0], code) if code else "")
    return text.where(detail == "", text + " (" + detail + ")")


def _campaign_for_import(session, name: str, message: str, source: str) -> Campaign:
    existing = queries.get_campaign(session, name)
    if existing is None:
        campaign = Campaign(
            name=name,
            token=ids.new_campaign_token(),
            template=message,
            source=source,
            created_at=queries.utcnow(),
        )
        session.add(campaign)
        session.flush()
        return campaign
    if existing.template != message:
        raise UserError(
            f"campaign {name!r} already exists with another message template; "
            "use a new campaign name or the same --message"
        )
    return existing


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
