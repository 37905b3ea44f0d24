"""Send a campaign: claim → mark ``sending`` (committed) → request → record, with a worker pool.

The rule that buys exactly-once: a message is committed as ``sending`` before its request leaves,
and a message found ``sending`` is never sent again before its messageId has been looked up.
Outcomes are written in batches (one transaction each); whatever a crash loses between the reply
and the write is still ``sending`` and is resolved by a lookup later.

Several senders (processes, hosts) may work one campaign. Each claim carries the sender's name
(``claimed_by``, unique per run) and a lease that a heartbeat thread renews. A sender that dies
stops renewing; once its leases expire (at once when it ran on this host and its PID is gone)
another sender takes its ``sending`` messages over, looks them up and finishes them. Every write
of an outcome is fenced on ``claimed_by``, so a sender that was merely slow and lost its lease
changes nothing, and it never starts a request on a lease about to expire.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from campaigns.errors import (
    AccountBlocked,
    CampaignsError,
    MessageRejected,
    SendStopped,
    Transient,
    UserError,
)
from campaigns.provider.client import ZhenziClient
from campaigns.provider.ratelimit import SharedRateLimiter, Unlimited
from campaigns.schedule import (
    Cap,
    Clock,
    Window,
    as_utc_naive,
    gate,
    next_shanghai_midnight,
    shanghai_now,
)
from campaigns.store import queries
from campaigns.store.db import Store
from campaigns.store.models import (
    CANCEL,
    DEFERRED,
    FAILED,
    PAUSE,
    PENDING,
    SENDING,
    SENT,
    SUPPRESSED,
    Campaign,
)
from campaigns.store.queries import Claim

# A lease outlives a request with all its retries many times over, and survives a few missed
# renewals (a database hiccup); a dead sender's messages wait at most this long for another.
LEASE = timedelta(seconds=30)
RENEW_EVERY = 5.0
# No request starts on a lease with less than this left: it must land while the lease holds.
LEASE_MARGIN = 12.0
TAKEOVER_EVERY = 5.0
FLUSH_EVERY = 0.5
CHECK_EVERY = 0.5  # how often a run looks at pause/cancel, the suppression list and the clock
DAILY_LIMIT = 109  # this number's daily limit: deferred to the next Shanghai day, not failed
PERMANENT_CODES = frozenset({100, 101})  # a bad number or text: what the error budget counts
MAX_PASSES = 3  # send → resolve unknown outcomes → send what the provider never got
PROVIDER_DOWN_AFTER = 10  # consecutive messages that used up all retries


@dataclass
class SendProgress:
    """Counts so far in this run; ``total`` is what was pending or in flight when it started."""

    total: int
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    confirmed_by_lookup: int = 0
    deferred: int = 0
    suppressed: int = 0
    next_due: datetime | None = None  # when the first deferred message may go (naive UTC)

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.unknown + self.deferred + self.suppressed


@dataclass
class SendOptions:
    rate: float | None = None
    burst: int = 5
    concurrency: int = 16  # requests in flight; a tenth of --rate is plenty at 20 ms latency
    batch_size: int = 200
    window: Window | None = None  # daily hours, Asia/Shanghai
    start_at: datetime | None = None
    until: datetime | None = None
    no_wait: bool = False  # outside the window / before --at: exit instead of waiting
    cap: Cap | None = None  # per number, across campaigns
    # Pause the campaign when more than this share of the last N sends failed permanently.
    error_budget: tuple[float, int] = (0.20, 200)
    allow_partial: bool = False  # start even when the balance cannot cover the campaign
    on_progress: Callable[[SendProgress], None] | None = None
    on_wait: Callable[[str], None] | None = None
    clock: Clock = shanghai_now
    sleep: Callable[[float], None] = time.sleep
    stop: threading.Event = field(default_factory=threading.Event)


def sender_name() -> str:
    """``pid@host/random``: names this run; its fenced writes cannot pass for another's."""
    return f"{os.getpid()}@{socket.gethostname()}/{secrets.token_hex(3)}"


def is_dead_here(holder: str | None) -> bool:
    """True for a sender of this host whose process is gone (its leases need not be waited out)."""
    if not holder:
        return True
    pid, _, rest = holder.partition("@")
    if rest.split("/")[0] != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def send_campaign(
    store: Store, client: ZhenziClient, name: str, options: SendOptions, *, account: str = ""
) -> SendProgress:
    """Send every pending message of campaign ``name``; resumable at any point.

    Raises ``SendStopped`` when the provider blocks the account or the run is interrupted; the
    messages not yet sent stay ``pending`` and the next call carries on. ``account`` names the
    shared rate bucket (all senders of one account share ``options.rate``).
    """
    campaign = queries.campaign_by_name(store, name)
    if campaign.control == CANCEL:
        raise UserError(f"campaign {name!r} was cancelled; a cancelled campaign never sends again")
    queries.update_campaign(
        store,
        campaign.id,
        started_at=campaign.started_at or queries.utcnow(),
        stop_code=None,
        stop_reason=None,
        control=None,  # `send` resumes a paused campaign
    )
    run = _SendRun(store, client, campaign, options, account or client.api_url)
    if not options.allow_partial:
        run.check_balance()
    try:
        with run.heartbeat():
            run.run()
    finally:
        queries.release_leases(store, run.me)
    progress = run.finish(name)
    progress.deferred, progress.next_due = queries.next_due(store, campaign.id)
    counts = queries.counts_by_state(store, campaign.id)
    if counts[PENDING] + counts[SENDING] + counts[DEFERRED] == 0:
        queries.update_campaign(store, campaign.id, finished_at=queries.utcnow())
    return progress


def plan(store: Store, name: str) -> SendPlan:
    """What a send would do now: messages, SMS segments (what the balance pays for)."""
    campaign = queries.campaign_by_name(store, name)
    messages, segments = queries.unsent_segments(store, campaign.id)
    return SendPlan(name, messages, segments)


@dataclass
class SendPlan:
    campaign: str
    messages: int
    segments: int
    balance: int | None = None

    @property
    def covered(self) -> bool:
        return self.balance is None or self.balance >= self.segments


def _outcome(claim: Claim, state: str, requests: int, **columns: Any) -> dict[str, Any]:
    return {
        "id": claim.id,
        "state": state,
        "attempts": claim.attempts - 1 + requests,
        "sent_at": columns.get("sent_at"),
        "error_code": columns.get("error_code"),
        "error_text": columns.get("error_text"),
        "lease_until": None,
    }


def _deferred(
    claim: Claim, due: datetime, code: int | str, text: str, requests: int = 0
) -> dict[str, Any]:
    outcome = _outcome(
        claim,
        DEFERRED,
        requests,
        error_code=code if isinstance(code, int) else None,
        error_text=text,
    )
    outcome["due_at"] = due
    return outcome


def _suppressed(claim: Claim) -> dict[str, Any]:
    return _outcome(claim, SUPPRESSED, 0, error_text="on the suppression list")


class _SendRun:
    """One run of ``send``: the main thread claims and records, workers talk to the provider."""

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
        self.me = sender_name()
        if options.rate:
            reserve = lambda *slot: queries.reserve_slots(store, account, *slot)  # noqa: E731
            self.limiter = SharedRateLimiter(options.rate, options.burst, reserve)
        else:
            self.limiter = Unlimited()
        counts = queries.counts_by_state(store, campaign.id)
        self.progress = SendProgress(total=counts[PENDING] + counts[SENDING])
        self.blocked: AccountBlocked | None = None
        self.unavailable: Transient | None = None
        self.crashed: BaseException | None = None
        self.interrupted = False
        self._lock = threading.Lock()
        self._give_ups = 0  # consecutive messages whose retries were all used up
        self._lease_safe_until = time.monotonic() + LEASE.total_seconds() - LEASE_MARGIN
        # A renewal that comes after the safe window closed cannot vouch for older claims:
        # another sender may have taken them over meanwhile. Claims made before this moment
        # are never sent (their fenced write-back changes nothing if they were taken over).
        self._forfeit_before = float("-inf")
        self._outstanding = 0  # claims handed to workers whose outcome has not come back
        self._exhausted = False
        self._unwritten: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._last_takeover = 0.0
        self._last_check = 0.0
        self.controlled: str | None = None  # "pause" / "cancel" seen while running
        self.held: str | None = None  # why the schedule stopped this run (window, --until)
        self.over_budget: str | None = None
        share, window = options.error_budget
        self._budget_share = share
        self._recent: deque[bool] = deque(maxlen=window)  # True = failed for a permanent reason
        self._suppressed, self._suppressed_seen = queries.suppressed_since(store, None)

    def run(self) -> None:
        """Finish what dead senders left unknown, send, then resolve what this run left."""
        try:
            self.take_over_orphans()
            for _ in range(MAX_PASSES):
                self.send_pending()
                if self._stopping() or not self.resolve(self._own_in_flight()):
                    break
        except KeyboardInterrupt:
            self.interrupted = True

    def _stopping(self) -> bool:
        return self.options.stop.is_set()

    def check_balance(self) -> None:
        """Refuse to start a campaign the balance cannot pay for (unless allowed a partial run)."""
        wanted = plan(self.store, self._name()).segments
        balance = self.client.balance()
        if balance < wanted:
            raise SendStopped(
                f"the balance ({balance} SMS) cannot cover this campaign ({wanted} SMS segments "
                "to send); top up in the Zhenzi user centre, or send part of it with "
                "--allow-partial"
            )

    def _name(self) -> str:
        with self.store.session() as session:
            return session.get(Campaign, self.campaign_id).name

    # -- schedule and controls ----

    def _may_claim(self) -> bool:
        self._periodic_checks()
        return not self._stopping() and self._schedule_allows()

    def _periodic_checks(self) -> None:
        """About twice a second: pause/cancel, new suppressions, deferred messages now due."""
        if time.monotonic() - self._last_check < CHECK_EVERY:
            return
        self._last_check = time.monotonic()
        self._check_controls()
        fresh, self._suppressed_seen = queries.suppressed_since(self.store, self._suppressed_seen)
        self._suppressed |= fresh
        now = as_utc_naive(self.options.clock())
        if queries.wake_deferred(self.store, self.campaign_id, now):
            self._exhausted = False

    def _schedule_allows(self) -> bool:
        """True when the window, --at and --until allow sending; waits or stops otherwise."""
        options = self.options
        verdict = gate(
            options.clock(), window=options.window, start_at=options.start_at, until=options.until
        )
        if verdict.open:
            return True
        if self._outstanding:
            return False  # let in-flight requests come back first
        if verdict.wait_until is None or options.no_wait:
            when = (
                f"; send again after {verdict.wait_until:%Y-%m-%d %H:%M}"
                if verdict.wait_until
                else ""
            )
            self.held = f"{verdict.reason}{when}"
            options.stop.set()
            return False
        if options.on_wait:
            options.on_wait(f"{verdict.reason}; waiting until {verdict.wait_until:%Y-%m-%d %H:%M}")
        self._wait_until(verdict.wait_until)
        return False

    def _wait_until(self, moment: datetime) -> None:
        """Sleep in short steps so pause, cancel and Ctrl-C are still noticed."""
        while not self._stopping():
            left = (moment - self.options.clock()).total_seconds()
            if left <= 0:
                return
            self.options.sleep(min(left, CHECK_EVERY))
            if not self._check_controls():
                return

    def _check_controls(self) -> bool:
        """False (and the run stops) once `campaigns pause` or `cancel` was given."""
        control = queries.campaign_control(self.store, self.campaign_id)
        if control in (PAUSE, CANCEL):
            self.controlled = control
            self.options.stop.set()
            return False
        return True

    def _screen(self, claims: list[Claim]) -> list[Claim]:
        """Drop claims for suppressed numbers and numbers over the cap; record why."""
        phones = [claim.phone for claim in claims]
        suppressed = queries.suppressed_among(self.store, phones) | (self._suppressed & set(phones))
        capped = self._capped(phones)
        outcomes, keep = [], []
        for claim in claims:
            if claim.phone in suppressed:
                outcomes.append(_suppressed(claim))
            elif claim.phone in capped:
                outcomes.append(_deferred(claim, capped[claim.phone], "cap", self._cap_text()))
            else:
                keep.append(claim)
        self._unwritten.extend(outcomes)
        return keep

    def _capped(self, phones: list[str]) -> dict[str, datetime]:
        cap = self.options.cap
        if cap is None:
            return {}
        now = as_utc_naive(self.options.clock())
        received = queries.recently_received(self.store, phones, now - cap.period)
        return {
            phone: oldest + cap.period
            for phone, (count, oldest) in received.items()
            if count >= cap.count
        }

    def _cap_text(self) -> str:
        cap = self.options.cap
        hours = cap.period.total_seconds() / 3600
        period = f"{hours:g}h" if hours < 48 else f"{hours / 24:g}d"
        return f"cap {cap.count}/{period} reached: deferred until the window allows"

    def _note_budget(self, outcomes: list[dict[str, Any]]) -> None:
        """Watch each outcome as it arrives; pause once the recent failures pass the budget."""
        window = self._recent.maxlen
        for outcome in outcomes:
            if outcome["state"] in (SENT, FAILED):
                self._recent.append(outcome.get("error_code") in PERMANENT_CODES)
            failures = sum(self._recent)
            if len(self._recent) == window and failures > self._budget_share * window:
                self._over_budget(failures, window)
                return

    def _over_budget(self, failures: int, window: int) -> None:
        if self.over_budget is None:
            self.over_budget = (
                f"{failures} of the last {window} sends failed for a permanent reason "
                f"(more than {self._budget_share:.0%}); check the message template and the list"
            )
            queries.update_campaign(self.store, self.campaign_id, control=PAUSE)
            self.options.stop.set()

    # -- leases ----

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """While it is open, a thread renews this run's leases every few seconds."""
        done = threading.Event()
        thread = threading.Thread(target=self._renew, args=(done,), daemon=True, name="lease")
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _renew(self, done: threading.Event) -> None:
        while not done.wait(RENEW_EVERY):
            started = time.monotonic()
            if started >= self._lease_safe_until:  # stopped, starved or cut off too long
                self._forfeit_before = started
            try:
                queries.renew_leases(self.store, self.me, queries.utcnow() + LEASE)
            except SQLAlchemyError:
                continue  # a missed renewal only brings the lease's end closer
            self._lease_safe_until = started + LEASE.total_seconds() - LEASE_MARGIN

    def _lease_is_safe(self) -> bool:
        return time.monotonic() < self._lease_safe_until

    # -- unknown outcomes ----

    def take_over_orphans(self) -> int:
        """Claim ``sending`` messages of senders that are gone, and resolve them by lookup."""
        self._last_takeover = time.monotonic()
        holders = queries.holders_in_flight(self.store, self.campaign_id)
        dead = [holder for holder in holders if holder != self.me and is_dead_here(holder)]
        orphans = queries.take_over(
            self.store, self.campaign_id, self.me, LEASE, dead, limit=10_000
        )
        return self.resolve(orphans)

    def _own_in_flight(self) -> list[Claim]:
        return queries.in_flight(self.store, self.campaign_id, self.me)

    def resolve(self, claims: list[Claim]) -> int:
        """Look each claim up: found → sent, unknown to the provider → pending again.

        Whoever sent these before is gone or is this run, so every earlier request is in the
        past: one lookup window from now, the provider shows it. Returns how many went back.
        """
        if not claims:
            return 0
        settled_from = time.monotonic()

        def look_up(claim: Claim) -> dict[str, Any] | None:
            self.limiter.acquire()
            try:
                record = self.client.find_settled(claim.message_id, settled_from)
            except (Transient, AccountBlocked):
                return None  # still unknown: stays `sending` for the next pass or run
            # requests=1: the attempt the claim counted did happen, whatever became of it.
            if record is None:
                return _outcome(claim, PENDING, 1, error_text="not received by the provider")
            return _outcome(claim, SENT, 1, sent_at=queries.utcnow())

        with ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="lookup") as pool:
            outcomes = [o for o in pool.map(look_up, claims) if o is not None]
        queries.record_outcomes(self.store, outcomes, self.me)
        found = sum(o["state"] == SENT for o in outcomes)
        self.progress.sent += found
        self.progress.confirmed_by_lookup += found
        return sum(o["state"] == PENDING for o in outcomes)

    # -- the main loop ----

    def send_pending(self) -> None:
        work: queue.Queue[tuple[Claim, float] | None] = queue.Queue()
        results: queue.Queue[dict[str, Any]] = queue.Queue()
        workers = [
            threading.Thread(
                target=self._worker, args=(work, results), daemon=True, name=f"send-{i}"
            )
            for i in range(self.options.concurrency)
        ]
        for worker in workers:
            worker.start()
        self._exhausted = False
        try:
            self._pump(work, results)
        except KeyboardInterrupt:
            # Ctrl-C / SIGTERM: stop claiming; the workers finish their requests (queued claims
            # come back unsent) and every outcome is recorded once they are done.  Counting them
            # back instead could wait forever for one the interrupt caught half-way through.
            self.interrupted = True
            self.options.stop.set()
        finally:
            for _ in workers:
                work.put(None)
        for worker in workers:
            worker.join()
        if self.interrupted:
            while not results.empty():
                self._unwritten.append(results.get_nowait())
            self._outstanding = 0
            self._flush()

    def _pump(self, work: queue.Queue, results: queue.Queue) -> None:
        """Keep the workers fed with claims; write outcomes in batches; stop when all are back."""
        claim_size = min(self.options.batch_size, 4 * self.options.concurrency)
        while True:
            if (
                not self._exhausted
                and self._outstanding < 2 * self.options.concurrency
                and self._may_claim()
            ):
                claimed_at = time.monotonic()
                claims = queries.claim_batch(
                    self.store, self.campaign_id, claim_size, self.me, LEASE
                )
                self._exhausted = not claims
                for claim in self._screen(claims):
                    work.put((claim, claimed_at))
                    self._outstanding += 1
            if self._outstanding == 0 and (self._exhausted or self._stopping()):
                break
            if self._outstanding == 0 and not self._may_claim():
                continue  # waiting for the window; nothing in flight
            self._periodic_checks()
            arrived = self._drain(results)
            self._note_budget(arrived)
            self._outstanding -= len(arrived)
            if any(outcome["state"] == PENDING for outcome in arrived):
                self._exhausted = False  # a give-up went back to the queue
            self._unwritten.extend(arrived)
            if self._unwritten and (
                self._outstanding == 0
                or len(self._unwritten) >= self.options.batch_size
                or time.monotonic() - self._last_flush >= FLUSH_EVERY
            ):
                self._flush()
            if self._takeover_due() and self.take_over_orphans():
                self._exhausted = False  # a dead sender's messages are pending again
        self._flush()

    def _takeover_due(self) -> bool:
        return time.monotonic() - self._last_takeover >= TAKEOVER_EVERY and not self._stopping()

    def _drain(self, results: queue.Queue) -> list[dict[str, Any]]:
        try:
            batch = [results.get(timeout=0.1)]
        except queue.Empty:
            return []
        while True:
            try:
                batch.append(results.get_nowait())
            except queue.Empty:
                return batch

    def _flush(self) -> None:
        outcomes, self._unwritten = self._unwritten, []
        self._last_flush = time.monotonic()
        if not outcomes:
            return
        queries.record_outcomes(self.store, outcomes, self.me)
        counted = {
            SENT: "sent",
            FAILED: "failed",
            SENDING: "unknown",
            DEFERRED: "deferred",
            SUPPRESSED: "suppressed",
        }
        for outcome in outcomes:
            if outcome["state"] in counted:
                name = counted[outcome["state"]]
                setattr(self.progress, name, getattr(self.progress, name) + 1)
        if self.options.on_progress:
            self.options.on_progress(self.progress)

    # -- workers ----

    def _worker(self, work: queue.Queue, results: queue.Queue) -> None:
        while (item := work.get()) is not None:
            claim, claimed_at = item
            try:
                results.put(self._handle(claim, claimed_at))
            except Exception as exc:  # every claim must come back, or the run never ends
                self.crashed = self.crashed or exc
                self.options.stop.set()
                results.put(self._unknown(claim, CampaignsError(f"internal error: {exc!r}")))

    def _handle(self, claim: Claim, claimed_at: float) -> dict[str, Any]:
        if not self._stopping():
            self.limiter.acquire()
        if self._stopping() or not self._lease_is_safe() or claimed_at <= self._forfeit_before:
            return _outcome(claim, PENDING, 0)
        if claim.phone in self._suppressed:  # added while this campaign runs
            return _suppressed(claim)
        return self._send_one(claim)

    def _send_one(self, claim: Claim) -> dict[str, Any]:
        try:
            if self.template_id:
                params = json.loads(claim.params or "[]")
                result = self.client.send_template(
                    claim.phone, self.template_id, params, claim.message_id, self.limiter.acquire
                )
            else:
                result = self.client.send(
                    claim.phone, claim.content, claim.message_id, self.limiter.acquire
                )
        except MessageRejected as exc:
            if exc.maybe_sent:
                return self._unknown(claim, exc)
            if exc.code == DAILY_LIMIT:
                due = as_utc_naive(next_shanghai_midnight(self.options.clock()))
                return _deferred(claim, due, DAILY_LIMIT, exc.meaning, requests=exc.requests)
            return _outcome(
                claim, FAILED, exc.requests, error_code=exc.code, error_text=exc.meaning or exc.text
            )
        except AccountBlocked as exc:
            self.blocked = self.blocked or exc
            self.options.stop.set()
            return self._unknown(claim, exc) if exc.maybe_sent else _outcome(claim, PENDING, 0)
        except Transient as exc:
            # The client already retried with backoff. One unlucky message goes back (or stays
            # unknown); many in a row mean the provider is down, and the run stops.
            if self._note_unavailable(exc):
                self.options.stop.set()
            return self._unknown(claim, exc) if exc.maybe_sent else _outcome(claim, PENDING, 0)
        except Exception as exc:  # a bug must not lose track of a message that may have gone out
            self.crashed = self.crashed or exc
            self.options.stop.set()
            return self._unknown(claim, CampaignsError(f"internal error: {exc!r}"))
        self._note_unavailable(None)
        return _outcome(claim, SENT, result.requests, sent_at=queries.utcnow())

    def _note_unavailable(self, exc: Transient | None) -> bool:
        """Count consecutive give-ups; True once there are enough to call the provider down."""
        with self._lock:
            self._give_ups = self._give_ups + 1 if exc else 0
            if self._give_ups >= PROVIDER_DOWN_AFTER:
                self.unavailable = self.unavailable or exc
                return True
            return False

    @staticmethod
    def _unknown(claim: Claim, exc: Exception) -> dict[str, Any]:
        requests = getattr(exc, "requests", 1)
        outcome = _outcome(claim, SENDING, requests, error_text=f"outcome unknown: {exc}")
        del outcome["lease_until"]  # keep holding it until a lookup settles it
        return outcome

    # -- the end ----

    def finish(self, name: str) -> SendProgress:
        if self.crashed is not None:
            raise self.crashed
        self._check_controls()  # a cancel can empty the queue before the loop looked
        resume = f"run `campaigns send {name}` to resume"
        if self.blocked is not None:
            advice = self.blocked.advice or "fix the account"
            reason = f"provider code {self.blocked.code}: {self.blocked.meaning}; {advice}"
            queries.update_campaign(
                self.store, self.campaign_id, stop_code=self.blocked.code, stop_reason=reason
            )
            raise SendStopped(f"sending stopped: {reason}; then {resume}", account=self.blocked)
        if self.unavailable is not None:
            reason = f"the provider is unavailable ({self.unavailable})"
            queries.update_campaign(self.store, self.campaign_id, stop_reason=reason)
            raise SendStopped(f"sending stopped: {reason}; {resume} later")
        if self.controlled == CANCEL:
            queries.cancel_unsent(self.store, self.campaign_id)
            queries.update_campaign(self.store, self.campaign_id, stop_reason="cancelled")
            raise SendStopped("cancelled: the campaign's unsent messages will never be sent")
        for reason in (
            self.over_budget,
            self.controlled and "paused by `campaigns pause`",
            self.held,
        ):
            if reason:
                queries.update_campaign(self.store, self.campaign_id, stop_reason=reason)
                raise SendStopped(f"stopped: {reason}; {resume}")
        if self.interrupted:
            queries.update_campaign(self.store, self.campaign_id, stop_reason="interrupted")
            raise SendStopped(f"stopped; {resume}")
        return self.progress
