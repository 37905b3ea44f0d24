"""Reconcile: look every sent message up and record delivered / undelivered with the raw record.

Each message is handled on its own: a lookup that fails, or a record nobody expected, leaves that
message ``sent`` for the next pass and never costs the outcomes already fetched. Only a problem
that every lookup would hit (the account, TLS, the URL) stops the pass, after the page's answers
so far are recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from campaigns.errors import CampaignsError, Transient
from campaigns.provider.client import SmsRecord, ZhenziClient
from campaigns.provider.codes import UNRECOGNISED_STATUS
from campaigns.provider.ratelimit import RateLimiter, Unlimited
from campaigns.schedule import shanghai_wall_to_utc
from campaigns.sending.pacing import (
    DEFAULT_CAP,
    SPARE_THREADS,
    Answers,
    InFlight,
    RateReport,
    limited_by,
)
from campaigns.store.campaign_queries import campaign_by_name, counts_by_state, utcnow
from campaigns.store.db import Store
from campaigns.store.models import DELIVERED, EXPIRED, SENT, UNDELIVERED
from campaigns.store.outcomes import Outcome, record_outcomes
from campaigns.store.send_queries import sent_not_final

PAGE = 500
EXPIRE_AFTER = timedelta(hours=72)
# Seconds between passes of `reconcile --wait`: quick at first, when most receipts arrive, then
# every 15 minutes until every message is final or expired.
WAIT_SCHEDULE = (10.0, 30.0, 60.0, 300.0)
WAIT_EVERY = 900.0
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass
class ReconcileProgress(RateReport):
    total: int
    delivered: int = 0
    undelivered: int = 0
    still_pending: int = 0
    not_found: int = 0
    expired: int = 0
    errors: int = 0
    # No message of the campaign was ever sent: nothing to look up.
    nothing_sent: bool = False

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

    @property
    def not_final(self) -> int:
        return self.still_pending + self.not_found + self.errors


def _provider_time(record: SmsRecord) -> datetime:
    """When the provider says it happened, as naive UTC (it speaks Asia/Shanghai wall time).

    The real record has no delivered time, only ``createTime``; a ``statusTime`` wins when a
    record has one; with neither, the time of the lookup.
    """
    for name in ("statusTime", "createTime"):
        text = str(record.fields.get(name) or "")
        try:
            return shanghai_wall_to_utc(datetime.strptime(text, _TIME_FORMAT))
        except ValueError:
            continue
    return utcnow()


def _not_final(message_pk: int, record: SmsRecord | None, expired: bool) -> Outcome:
    note = f"{UNRECOGNISED_STATUS}{record.status}" if record is not None else None
    return Outcome(
        message_pk,
        EXPIRED if expired else SENT,
        delivery=True,
        provider_record=record.raw if record else None,
        error_text="no delivery report within the expiry time" if expired else note,
    )


def _outcome(
    message_pk: int, record: SmsRecord | None, sent_at: datetime | None, expire_before: datetime
) -> Outcome:
    if record is None or record.delivery is None:
        expired = sent_at is not None and sent_at < expire_before
        return _not_final(message_pk, record, expired)
    failed = record.delivery == "undelivered"
    return Outcome(
        message_pk,
        UNDELIVERED if failed else DELIVERED,
        delivery=True,
        final_at=_provider_time(record),
        provider_record=record.raw,
        error_text=str(record.fields.get("errorMsg") or record.status) if failed else None,
    )


@dataclass(frozen=True)
class _Answer:
    message_pk: int
    record: SmsRecord | None = None
    failed: bool = False  # the lookup failed: unknown, ask again later
    stop: Exception | None = None  # every other lookup would fail the same way


def reconcile_campaign(
    store: Store,
    client: ZhenziClient,
    name: str,
    *,
    rate: float | None = None,
    concurrency: int = DEFAULT_CAP,
    expire_after: timedelta = EXPIRE_AFTER,
    now: datetime | None = None,
    on_progress: Callable[[ReconcileProgress], None] | None = None,
) -> ReconcileProgress:
    """Look up every ``sent`` message once; messages still pending stay ``sent`` for next time.

    A message sent more than ``expire_after`` ago (default 72 h, as GOV.UK Notify does) without
    a final answer ends ``expired``, so every campaign reaches a final state. Lookups in flight
    follow ``rate`` × the measured latency (``campaigns.sending.pacing``), ``concurrency`` at most.
    """
    expire_before = (now or utcnow()) - expire_after
    campaign = campaign_by_name(store, name)
    counts = counts_by_state(store, campaign.id)
    progress = ReconcileProgress(total=counts[SENT], asked_rate=rate)
    if campaign.started_at is None and not any(counts[s] for s in (SENT, DELIVERED, UNDELIVERED)):
        progress.nothing_sent = True
        return progress
    lookups = _Lookups(client, rate, concurrency)
    started, cpu = time.monotonic(), time.process_time()
    # More threads than slots: a thread waiting out a backoff holds no slot, and must not keep
    # a lookup from being made either.
    with ThreadPoolExecutor(concurrency + SPARE_THREADS, thread_name_prefix="reconcile") as pool:
        for page, answers in _answered_pages(store, campaign.id, pool, lookups.look_up):
            sent_at = {pk: when for pk, _, when in page}
            outcomes = [_record(progress, a, sent_at[a.message_pk], expire_before) for a in answers]
            record_outcomes(store, [o for o in outcomes if o is not None])
            lookups.summarise(progress, time.monotonic() - started, time.process_time() - cpu)
            if on_progress:
                on_progress(progress)
            stop = next((a.stop for a in answers if a.stop is not None), None)
            if stop is not None:
                raise stop
    return progress


Page = list[tuple[int, str, datetime | None]]


def _answered_pages(
    store: Store,
    campaign_id: int,
    pool: ThreadPoolExecutor,
    look_up: Callable[[tuple[int, str, datetime | None]], _Answer],
) -> Iterator[tuple[Page, list[_Answer]]]:
    """Each page with its answers; the next page's lookups start before this one's are in, so
    the lookups in flight do not drain to nothing at the end of every page."""
    page = sent_not_final(store, campaign_id, 0, PAGE)
    futures = [pool.submit(look_up, item) for item in page]
    while page:
        following = sent_not_final(store, campaign_id, page[-1][0], PAGE)
        following_futures = [pool.submit(look_up, item) for item in following]
        try:
            yield page, [future.result() for future in futures]
        except GeneratorExit:
            for future in following_futures:
                future.cancel()
            raise
        page, futures = following, following_futures


class _Lookups:
    """One lookup per message, at the rate, with rate × latency of them in flight. A lookup that
    fails transiently waits out its backoff *outside* its slot, so a few percent of failures do
    not hold the slots the others need; each attempt takes its slot from the rate."""

    def __init__(
        self,
        client: ZhenziClient,
        rate: float | None,
        concurrency: int,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client.single_attempt()
        self.attempts = client.max_attempts
        self.rate = rate
        self.limiter = RateLimiter(rate) if rate else Unlimited()
        self.sizing = InFlight(rate, concurrency)
        self.answers = Answers()
        self.sleep = sleep

    def look_up(self, item: tuple[int, str, datetime | None]) -> _Answer:
        for failures in range(1, self.attempts + 1):
            self.limiter.acquire()
            try:
                with self.sizing.slot():
                    record = self.client.find(item[1])
            except Transient:
                if failures < self.attempts:
                    self.sleep(self.client.backoff_for(failures))
                continue
            except CampaignsError as exc:  # the account, TLS, the URL: every lookup would fail
                return _Answer(item[0], failed=True, stop=exc)
            except Exception:  # a record nobody foresaw: this message waits, the others go on
                return _Answer(item[0], failed=True)
            self.answers.note()
            return _Answer(item[0], record)
        return _Answer(item[0], failed=True)

    def summarise(self, progress: ReconcileProgress, seconds: float, cpu: float) -> None:
        if seconds <= 0 or not progress.done:
            return
        progress.achieved_rate = self.answers.rate()
        progress.limited_by = limited_by(
            self.sizing,
            cpu_share=cpu / seconds,
            error_share=progress.errors / progress.done,
            shared=False,
        )


def _record(
    progress: ReconcileProgress, answer: _Answer, sent_at: datetime | None, expire_before: datetime
) -> Outcome | None:
    """The answer's outcome (None: nothing to write), counted in ``progress``."""
    if answer.failed:
        if answer.stop is None and sent_at is not None and sent_at < expire_before:
            progress.expired += 1  # past expiry, the lookup's failure changes nothing
            return _not_final(answer.message_pk, None, expired=True)
        progress.errors += 1
        return None
    outcome = _outcome(answer.message_pk, answer.record, sent_at, expire_before)
    _count(progress, outcome.state, answer.record)
    return outcome


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


def reconcile_until_final(
    run_pass: Callable[[], ReconcileProgress],
    *,
    schedule: Sequence[float] = WAIT_SCHEDULE,
    every: float = WAIT_EVERY,
    sleep: Callable[[float], None] = time.sleep,
    on_pass: Callable[[int, ReconcileProgress, float | None], None] | None = None,
) -> ReconcileProgress:
    """Run passes until no message is left awaiting an answer, sleeping on ``schedule``.

    It ends by itself: a message past the expiry time ends ``expired`` whatever its lookup
    says. ``on_pass(number, progress, next_wait)`` reports each pass (``next_wait`` None after
    the last). ``sleep`` is injectable so tests run the schedule without waiting.
    """
    number = 0
    while True:
        progress = run_pass()
        number += 1
        if progress.nothing_sent or progress.not_final == 0:
            if on_pass:
                on_pass(number, progress, None)
            return progress
        wait = schedule[number - 1] if number <= len(schedule) else every
        if on_pass:
            on_pass(number, progress, wait)
        sleep(wait)
