"""One run of ``send``: claim → mark ``sending`` (committed) → request → record, in passes.

The run owns the loop and nothing else: the gate says whether it may claim, the worker pool
talks to the provider, the lookups settle unknown outcomes, the leases keep its claims, and the
``Stop`` they all tell says, at the end, why it stopped. Outcomes are written in batches (one
transaction each); whatever a crash loses between the reply and the write is still ``sending``
and is resolved by a lookup later.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from campaigns.errors import SendStopped, StopReason, UserError
from campaigns.provider.ratelimit import Limiter, SharedRateLimiter, Unlimited
from campaigns.sending.budget import ErrorBudget
from campaigns.sending.gate import Gate
from campaigns.sending.leases import LEASE, Leases, is_dead_here
from campaigns.sending.lookups import Lookups
from campaigns.sending.options import SendOptions, SendPlan, SendProgress, resume_command
from campaigns.sending.pacing import InFlight, limited_by
from campaigns.sending.stop import Stop
from campaigns.sending.workers import GiveUps, WorkerPool
from campaigns.store import send_queries
from campaigns.store.campaign_queries import (
    campaign_by_name,
    counts_by_state,
    next_due,
    unsent_segments,
    update_campaign,
    utcnow,
)
from campaigns.store.control_queries import cancel_unsent
from campaigns.store.db import Store
from campaigns.store.models import CANCEL, DEFERRED, PENDING, SENDING, Campaign
from campaigns.store.outcomes import Outcome, record_outcomes

if TYPE_CHECKING:
    from campaigns.provider.client import ZhenziClient

TAKEOVER_EVERY = 5.0
FLUSH_EVERY = 0.5
MAX_PASSES = 3  # send → resolve unknown outcomes → send what the provider never got


def send_campaign(
    store: Store, client: ZhenziClient, name: str, options: SendOptions, *, account: str = ""
) -> SendProgress:
    """Send every pending message of campaign ``name``; resumable at any point.

    Raises ``SendStopped`` when the provider blocks the account or the run is interrupted; the
    messages not yet sent stay ``pending`` and the next call carries on. ``account`` names the
    shared rate bucket (all senders of one account share ``options.rate``).
    """
    campaign = campaign_by_name(store, name)
    if campaign.control == CANCEL:
        raise UserError(f"campaign {name!r} was cancelled; a cancelled campaign never sends again")
    update_campaign(
        store,
        campaign.id,
        started_at=campaign.started_at or utcnow(),
        stop_code=None,
        stop_reason=None,
        control=None,  # `send` resumes a paused campaign
    )
    if not options.allow_partial:
        check_balance(store, client, name)
    run = _SendRun(store, client, campaign, options, account or client.api_url)
    with run.leases.heartbeat():
        run.run()
    progress = run.finish(name)
    progress.deferred, progress.next_due = next_due(store, campaign.id)
    counts = counts_by_state(store, campaign.id)
    if counts[PENDING] + counts[SENDING] + counts[DEFERRED] == 0:
        update_campaign(store, campaign.id, finished_at=utcnow())
    return progress


def plan(store: Store, name: str) -> SendPlan:
    """What a send would do now: messages, SMS segments (what the balance pays for)."""
    campaign = campaign_by_name(store, name)
    messages, segments = unsent_segments(store, campaign.id)
    return SendPlan(name, messages, segments)


def check_balance(store: Store, client: ZhenziClient, name: str) -> None:
    """Refuse to start a campaign the balance cannot pay for (unless allowed a partial run)."""
    wanted = plan(store, name).segments
    balance = client.balance()
    if balance < wanted:
        raise SendStopped(
            f"the balance ({balance} SMS) cannot cover this campaign ({wanted} SMS segments "
            "to send); top up in the Zhenzi user centre, or send part of it with "
            "--allow-partial",
            StopReason.BALANCE,
        )


def account_limiter(store: Store, account: str, rate: float | None) -> Limiter:
    """The account's rate, shared through the database by every sender of the account."""
    if not rate:
        return Unlimited()
    return SharedRateLimiter(
        rate, lambda count, interval: send_queries.reserve_slots(store, account, count, interval)
    )


class _SendRun:
    """The main thread claims, screens and records; the pool's workers talk to the provider."""

    def __init__(
        self,
        store: Store,
        client: ZhenziClient,
        campaign: Campaign,
        options: SendOptions,
        account: str,
    ) -> None:
        self.store = store
        self.client = client
        self.campaign_id = campaign.id
        self.template_id = campaign.template_id
        self.options = options
        self.stop = Stop(options.stop)
        self.leases = Leases(store)
        self.limiter = account_limiter(store, account, options.rate)
        counts = counts_by_state(store, campaign.id)
        self.progress = SendProgress(
            total=counts[PENDING] + counts[SENDING], asked_rate=options.rate
        )
        self.sizing = InFlight(options.rate, options.concurrency)
        self.gate = Gate(store, campaign.id, options, self.stop, on_wake=self._more_work)
        self.budget = ErrorBudget(store, campaign.id, options.error_budget, self.stop)
        self.give_ups = GiveUps(self.stop)
        self.lookups = Lookups(
            store, client, self.limiter, self.leases.me, options.concurrency, self.progress
        )
        self._outstanding = 0  # claims handed to workers whose outcome has not come back
        self._exhausted = False
        self._unwritten: list[Outcome] = []
        self._last_flush = time.monotonic()
        self._last_takeover = 0.0
        # What the rate summary is made of, over every pass of sending.
        self._seconds = self._cpu = self._answer_span = 0.0
        self._answer_gaps = self._requests = self._failed_requests = 0

    def run(self) -> None:
        """Finish what dead senders left unknown, send, then resolve what this run left."""
        try:
            self.take_over_orphans()
            for _ in range(MAX_PASSES):
                self.send_pending()
                if self.stop.is_set() or not self.lookups.resolve(self._own_in_flight()):
                    break
        except KeyboardInterrupt:
            self.stop.request(StopReason.INTERRUPTED)

    def _more_work(self) -> None:
        self._exhausted = False

    def take_over_orphans(self) -> int:
        """Claim ``sending`` messages of senders that are gone, and resolve them by lookup."""
        self._last_takeover = time.monotonic()
        me = self.leases.me
        holders = send_queries.holders_in_flight(self.store, self.campaign_id)
        dead = [holder for holder in holders if holder != me and is_dead_here(holder)]
        orphans = send_queries.take_over(
            self.store, self.campaign_id, me, LEASE, dead, limit=10_000
        )
        return self.lookups.resolve(orphans)

    def _own_in_flight(self) -> list[send_queries.Claim]:
        return send_queries.in_flight(self.store, self.campaign_id, self.leases.me)

    # -- one pass ----

    def send_pending(self) -> None:
        pool = WorkerPool(
            self.client,
            self.template_id,
            self.limiter,
            self.leases,
            self.gate.is_suppressed,
            self.stop,
            self.give_ups,
            self.options.clock,
            self.sizing,
        )
        self._exhausted = False
        started, cpu = time.monotonic(), time.process_time()
        try:
            self._pump(pool)
        except KeyboardInterrupt:
            # Ctrl-C / SIGTERM: stop claiming; the workers finish their requests (queued claims
            # and parked ones come back) and every outcome is recorded once they are done.
            # Counting them back instead could wait forever for one the interrupt caught
            # half-way through.
            self.stop.request(StopReason.INTERRUPTED)
        finally:
            pool.close()
        pool.join()
        if self.stop.has(StopReason.INTERRUPTED):
            self._unwritten.extend(pool.leftovers())
            self._outstanding = 0
            self._flush()
        self._seconds += time.monotonic() - started
        self._cpu += time.process_time() - cpu
        self._answer_span += pool.answers.span
        self._answer_gaps += max(0, pool.answers.count - 1)
        self._requests += pool.requests
        self._failed_requests += pool.failed_requests
        self._summarise_rate()

    def _summarise_rate(self) -> None:
        """The achieved rate, and what most likely limited it, on the progress."""
        if not self._seconds or not self._answer_span:
            return
        # Between the first and the last answer of each pass: the rate the run held.
        self.progress.achieved_rate = self._answer_gaps / self._answer_span
        self.progress.limited_by = limited_by(
            self.sizing,
            cpu_share=self._cpu / self._seconds,
            error_share=self._failed_requests / max(1, self._requests),
            shared=self.options.rate is not None,
        )

    def _pump(self, pool: WorkerPool) -> None:
        """Keep the workers fed with claims; write outcomes in batches; stop when all are back."""
        while True:
            target = self.sizing.target
            if (
                not self._exhausted
                and pool.queued < 2 * target
                and self.gate.may_claim(self._outstanding)
            ):
                self._claim(pool, min(self.options.batch_size, 4 * target))
            if self._outstanding == 0 and (self._exhausted or self.stop.is_set()):
                break
            if self._outstanding == 0 and not self.gate.may_claim(self._outstanding):
                continue  # waiting for the window; nothing in flight
            self.gate.look_around()
            self._collect(pool.drain())
            if self._takeover_due() and self.take_over_orphans():
                self._exhausted = False  # a dead sender's messages are pending again
        self._flush()

    def _claim(self, pool: WorkerPool, size: int) -> None:
        claimed_at = time.monotonic()
        claims = send_queries.claim_batch(self.store, self.campaign_id, size, self.leases.me, LEASE)
        self._exhausted = not claims
        keep, screened = self.gate.screen(claims)
        self._unwritten.extend(screened)
        for claim in keep:
            pool.submit(claim, claimed_at)
            self._outstanding += 1

    def _collect(self, arrived: list[Outcome]) -> None:
        self.budget.note(arrived)
        self._outstanding -= len(arrived)
        if any(outcome.state == PENDING for outcome in arrived):
            self._exhausted = False  # a give-up went back to the queue
        self._unwritten.extend(arrived)
        if self._unwritten and (
            self._outstanding == 0
            or len(self._unwritten) >= self.options.batch_size
            or time.monotonic() - self._last_flush >= FLUSH_EVERY
        ):
            self._flush()

    def _takeover_due(self) -> bool:
        return time.monotonic() - self._last_takeover >= TAKEOVER_EVERY and not self.stop.is_set()

    def _flush(self) -> None:
        written, self._unwritten = self._unwritten, []
        self._last_flush = time.monotonic()
        if not written:
            return
        record_outcomes(self.store, written, self.leases.me)
        for outcome in written:
            self.progress.count(outcome)
        if self.options.on_progress:
            self.options.on_progress(self.progress)

    # -- the end ----

    def finish(self, name: str) -> SendProgress:
        """The progress, or ``SendStopped`` for the reason that wins; records why it stopped."""
        if self.stop.crashed is not None:
            raise self.stop.crashed
        self.gate.check_controls()  # a cancel can empty the queue before the loop looked
        settled = self.stop.settled()
        if settled is None:
            return self.progress
        reason, detail = settled
        resume = (
            f"run `{resume_command(name)}` to resume (with the campaign's stored send settings)"
        )
        if reason is StopReason.ACCOUNT:
            blocked = self.stop.account
            assert blocked is not None
            advice = blocked.advice or "fix the account"
            why = f"provider code {blocked.code}: {blocked.meaning}; {advice}"
            self._stopped_because(why, stop_code=blocked.code)
            raise SendStopped(f"sending stopped: {why}; then {resume}", reason, account=blocked)
        if reason is StopReason.PROVIDER_DOWN:
            self._stopped_because(detail)
            raise SendStopped(f"sending stopped: {detail}; {resume} later", reason)
        if reason is StopReason.CONNECTION:
            self._stopped_because(detail)
            raise SendStopped(f"sending stopped: {detail}; {resume} once fixed", reason)
        if reason is StopReason.CANCELLED:
            cancel_unsent(self.store, self.campaign_id)
            self._stopped_because("cancelled")
            raise SendStopped(
                "cancelled: the campaign's unsent messages will never be sent", reason
            )
        if reason is StopReason.INTERRUPTED:
            self._stopped_because("interrupted")
            raise SendStopped(f"stopped; {resume}", reason)
        self._stopped_because(detail)  # over budget, paused, the schedule
        raise SendStopped(f"stopped: {detail}; {resume}", reason)

    def _stopped_because(self, why: str, stop_code: int | None = None) -> None:
        """Kept with the campaign: `status` shows why the last send stopped."""
        values: dict[str, object] = {"stop_reason": why}
        if stop_code is not None:
            values["stop_code"] = stop_code
        update_campaign(self.store, self.campaign_id, **values)
