"""What a campaign looks like now, read from the store: the figures of `status` and `list`.

Loads neither pandas nor the provider client: `status` on a million messages starts and answers
quickly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from campaigns.provider.codes import UNRECOGNISED_STATUS, describe
from campaigns.reasons import REASONS
from campaigns.send_settings import SendSettings
from campaigns.store import campaign_queries
from campaigns.store.db import Store
from campaigns.store.models import (
    CANCEL,
    DEFERRED,
    DELIVERED,
    EXPIRED,
    FINAL_STATES,
    INVALID,
    PAUSE,
    PENDING,
    SENDING,
    SENT,
    STATES,
    SUPPRESSED,
    UNDELIVERED,
    Campaign,
    Message,
)

INSECURE = "the provider's certificate was not checked"


def insecure_tls_uses(warnings: str | None) -> list[str]:
    """The campaign's history lines saying a command ran with ``--insecure-tls``."""
    return [w for w in json.loads(warnings or "[]") if w.endswith(INSECURE)]


def content_warnings(warnings: str | None) -> list[str]:
    """The campaign's warnings about its text (import's), without the ``--insecure-tls`` history."""
    return [w for w in json.loads(warnings or "[]") if not w.endswith(INSECURE)]


@dataclass
class CampaignStatus:
    campaign: str
    total: int
    by_state: dict[str, int]
    errors: list[tuple[str, str, int]]  # (code or reason, meaning, count)
    stop_reason: str | None
    control: str | None
    senders: list[str]
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # Sent messages whose provider record carries a status text we cannot read, by that text.
    unrecognised_statuses: dict[str, int] = field(default_factory=dict)
    insecure_tls_uses: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # import's, about the text
    send_settings: SendSettings | None = None  # stored when a send first started

    def as_json(self) -> str:
        shown: dict[str, object] = {
            "campaign": self.campaign,
            "total": self.total,
            "by_state": self.by_state,
            "warnings": self.warnings,
            "send_settings": asdict(self.send_settings) if self.send_settings else None,
            "stop_reason": self.stop_reason,
        }
        if self.unrecognised_statuses:
            shown["unrecognised_statuses"] = self.unrecognised_statuses
        return json.dumps(shown, ensure_ascii=False)


def _meaning(code: int | None, reason: str | None) -> tuple[str, str]:
    if code is not None:
        return str(code), describe(code).meaning
    return str(reason), REASONS.get(str(reason), str(reason)) if reason else ""


def campaign_status(store: Store, name: str) -> CampaignStatus:
    campaign = campaign_queries.campaign_by_name(store, name)
    by_state = campaign_queries.counts_by_state(store, campaign.id)
    errors = [
        (*_meaning(code, reason), count)
        for code, reason, count in campaign_queries.errors_by_code(store, campaign.id)
    ]
    senders = campaign_queries.active_senders(store, campaign.id)
    unrecognised = _unrecognised_statuses(store, campaign.id) if by_state[SENT] else {}
    return CampaignStatus(
        campaign=name,
        total=sum(by_state.values()),
        by_state=by_state,
        errors=errors,
        stop_reason=campaign.stop_reason,
        control=campaign.control,
        senders=senders,
        created_at=campaign.created_at,
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
        unrecognised_statuses=unrecognised,
        insecure_tls_uses=insecure_tls_uses(campaign.warnings),
        warnings=content_warnings(campaign.warnings),
        send_settings=SendSettings.from_json(campaign.send_settings),
    )


def _unrecognised_statuses(store: Store, campaign_id: int) -> dict[str, int]:
    """Sent messages by the status text reconcile could not read (its note on the message).

    Grouped over the (campaign, state) index range of ``sent`` messages only.
    """
    prefix = len(UNRECOGNISED_STATUS) + 1
    text = func.substr(Message.error_text, prefix)
    query = (
        select(text, func.count())
        .where(
            Message.campaign_id == campaign_id,
            Message.state == SENT,
            Message.error_text.startswith(UNRECOGNISED_STATUS, autoescape=True),
        )
        .group_by(text)
        .order_by(func.count().desc())
    )
    with store.session() as session:
        return {status: count for status, count in session.execute(query)}


@dataclass
class CampaignRow:
    """One line of `list`: counts over the messages to send (rejects at import apart)."""

    campaign: str
    state: str  # ready, sending, paused, stopped, cancelled, done
    sent: int  # accepted by the provider (sent, delivered, undelivered, expired)
    final: int  # with a final answer: delivered, undelivered, expired, failed, cancelled
    total: int  # messages to send: every imported row but the rejected ones
    rejected: int  # rejected at import (invalid) or on the suppression list
    created_at: datetime

    def as_dict(self) -> dict:
        return {
            "campaign": self.campaign,
            "state": self.state,
            "sent": self.sent,
            "final": self.final,
            "total": self.total,
            "rejected": self.rejected,
            "created_at": f"{self.created_at:%Y-%m-%d %H:%M:%S}Z",
        }


ACCEPTED_STATES = (SENT, DELIVERED, UNDELIVERED, EXPIRED)
REJECTED_STATES = (INVALID, SUPPRESSED)


def _campaign_state(campaign: Campaign, counts: dict[str, int], live: bool) -> str:
    if campaign.control == CANCEL:
        return "cancelled"
    if campaign.control == PAUSE:
        return "paused"
    if live:
        return "sending"
    if campaign.stop_reason:
        return "stopped"
    unsent = counts[PENDING] + counts[DEFERRED] + counts[SENDING]
    if campaign.started_at is None:
        return "ready"
    return "done" if not unsent else "unfinished"


def campaign_rows(store: Store) -> list[CampaignRow]:
    """Every campaign with its state and progress (final messages of all)."""
    counts = campaign_queries.counts_by_campaign(store)
    rows = []
    for campaign in campaign_queries.list_campaigns(store):
        mine = counts.get(campaign.id, dict.fromkeys(STATES, 0))
        live = bool(mine[SENDING]) and bool(campaign_queries.active_senders(store, campaign.id))
        rejected = sum(mine[state] for state in REJECTED_STATES)
        rows.append(
            CampaignRow(
                campaign.name,
                _campaign_state(campaign, mine, live),
                sent=sum(mine[state] for state in ACCEPTED_STATES),
                final=sum(mine[state] for state in FINAL_STATES) - rejected,
                total=sum(mine.values()) - rejected,
                rejected=rejected,
                created_at=campaign.created_at,
            )
        )
    return rows
