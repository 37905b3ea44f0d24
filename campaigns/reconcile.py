"""Reconcile: look every sent message up and record delivered / undelivered with the raw record."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from campaigns.errors import AccountBlocked, Transient
from campaigns.provider.client import SmsRecord, ZhenziClient
from campaigns.provider.ratelimit import RateLimiter, Unlimited
from campaigns.store import queries
from campaigns.store.db import Store
from campaigns.store.models import DELIVERED, EXPIRED, SENT, UNDELIVERED

PAGE = 500
EXPIRE_AFTER = timedelta(hours=72)
SHANGHAI_OFFSET = timedelta(hours=8)


@dataclass
class ReconcileProgress:
    total: int
    delivered: int = 0
    undelivered: int = 0
    still_pending: int = 0
    not_found: int = 0
    expired: int = 0
    errors: int = 0

    @property
    def done(self) -> int:
        return (
            self.delivered
            + self.undelivered
            + self.still_pending
            + self.not_found
            + self.expired
            + self.errors
        )


def _provider_time(record: SmsRecord) -> datetime:
    """The record's statusTime (Asia/Shanghai wall time) as naive UTC; now when it has none."""
    text = str(record.fields.get("statusTime") or "")
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S") - SHANGHAI_OFFSET
    except ValueError:
        return queries.utcnow()


def _outcome(
    message_pk: int, record: SmsRecord | None, sent_at: datetime | None, expire_before: datetime
) -> dict[str, Any]:
    if (record is None or record.delivery is None) and sent_at and sent_at < expire_before:
        return {
            "id": message_pk,
            "state": EXPIRED,
            "final_at": None,
            "provider_record": record.raw if record else None,
            "error_text": "no delivery report within the expiry time",
        }
    if record is None or record.delivery is None:
        return {
            "id": message_pk,
            "state": SENT,
            "final_at": None,
            "provider_record": record.raw if record else None,
            "error_text": None,
        }
    failed = record.delivery == "undelivered"
    return {
        "id": message_pk,
        "state": UNDELIVERED if failed else DELIVERED,
        "final_at": _provider_time(record),
        "provider_record": record.raw,
        "error_text": str(record.fields.get("errorMsg") or record.status) if failed else None,
    }


def reconcile_campaign(
    store: Store,
    client: ZhenziClient,
    name: str,
    *,
    rate: float | None = None,
    concurrency: int = 8,
    expire_after: timedelta = EXPIRE_AFTER,
    now: datetime | None = None,
    on_progress: Callable[[ReconcileProgress], None] | None = None,
) -> ReconcileProgress:
    """Look up every ``sent`` message once; messages still pending stay ``sent`` for next time.

    A message sent more than ``expire_after`` ago (default 72 h, as GOV.UK Notify does) without
    a final answer ends ``expired``, so every campaign reaches a final state.
    """
    expire_before = (now or queries.utcnow()) - expire_after
    campaign = queries.campaign_by_name(store, name)
    progress = ReconcileProgress(total=queries.counts_by_state(store, campaign.id)[SENT])
    limiter = RateLimiter(rate, burst=5) if rate else Unlimited()

    def look_up(item: tuple[int, str, datetime | None]) -> tuple[int, SmsRecord | None, bool]:
        limiter.acquire()
        try:
            return item[0], client.find(item[1]), True
        except Transient:
            return item[0], None, False

    after_id = 0
    with ThreadPoolExecutor(concurrency, thread_name_prefix="reconcile") as pool:
        while page := queries.sent_not_final(store, campaign.id, after_id, PAGE):
            after_id = page[-1][0]
            sent_at = {pk: when for pk, _, when in page}
            outcomes = []
            try:
                for pk, record, answered in pool.map(look_up, page):
                    if answered:
                        outcomes.append(_outcome(pk, record, sent_at[pk], expire_before))
                        _count(progress, outcomes[-1]["state"], record)
                    else:
                        progress.errors += 1
            except AccountBlocked:
                queries.record_outcomes(store, outcomes)
                raise
            queries.record_outcomes(store, outcomes)
            if on_progress:
                on_progress(progress)
    return progress


def _count(progress: ReconcileProgress, state: str, record: SmsRecord | None) -> None:
    if state == DELIVERED:
        progress.delivered += 1
    elif state == UNDELIVERED:
        progress.undelivered += 1
    elif state == EXPIRED:
        progress.expired += 1
    elif record is None:
        progress.not_found += 1
    else:
        progress.still_pending += 1
