"""Send a campaign: claim → mark ``sending`` (committed) → request → record, with a worker pool.

The rule that buys exactly-once: a message is committed as ``sending`` before its request leaves,
and a message found ``sending`` is never sent again before its messageId has been looked up.
Outcomes are written in batches (one transaction each); whatever a crash loses between the reply
and the write is still ``sending`` and is resolved by a lookup on the next run.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from campaigns.errors import (
    AccountBlocked,
    CampaignsError,
    MessageRejected,
    SendStopped,
    Transient,
    UserError,
)
from campaigns.provider.client import ZhenziClient
from campaigns.provider.ratelimit import RateLimiter, Unlimited
from campaigns.store import queries
from campaigns.store.db import Store
from campaigns.store.models import FAILED, PENDING, SENDING, SENT
from campaigns.store.queries import Claim

HEARTBEAT_EVERY = 2.0
SENDER_STALE_AFTER = timedelta(seconds=20)
FLUSH_EVERY = 0.5
MAX_PASSES = 3  # send → resolve unknown outcomes → send what the provider never got
PROVIDER_DOWN_AFTER = 10  # consecutive messages that used up all retries


@dataclass
class SendProgress:
    """Counts so far in this run; ``total`` is what the run set out to send."""

    total: int
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    confirmed_by_lookup: int = 0

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.unknown


@dataclass
class SendOptions:
    rate: float | None = None
    burst: int = 5
    concurrency: int = 8
    batch_size: int = 200
    on_progress: Callable[[SendProgress], None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)


def send_campaign(
    store: Store, client: ZhenziClient, name: str, options: SendOptions
) -> SendProgress:
    """Send every pending message of campaign ``name``; resumable at any point.

    Raises ``SendStopped`` when the provider blocks the account or the run is interrupted; the
    messages not yet sent stay ``pending`` and the next call carries on.
    """
    campaign = queries.campaign_by_name(store, name)
    me = queries.this_process()
    holder = queries.acquire_sender(store, campaign.id, me, SENDER_STALE_AFTER)
    if holder:
        raise UserError(
            f"campaign {name!r} is already being sent by process {holder}; "
            "wait for it to finish or stop that process first"
        )
    try:
        queries.update_campaign(
            store,
            campaign.id,
            started_at=campaign.started_at or queries.utcnow(),
            stop_code=None,
            stop_reason=None,
        )
        run = _SendRun(store, client, campaign.id, me, options)
        run.run()
        progress = run.finish(name)
        counts = queries.counts_by_state(store, campaign.id)
        if counts[PENDING] + counts[SENDING] == 0:
            queries.update_campaign(store, campaign.id, finished_at=queries.utcnow())
        return progress
    finally:
        queries.release_sender(store, campaign.id, me)


def _outcome(claim: Claim, state: str, requests: int, **columns: Any) -> dict[str, Any]:
    return {
        "id": claim.id,
        "state": state,
        "attempts": claim.attempts - 1 + requests,
        "sent_at": columns.get("sent_at"),
        "error_code": columns.get("error_code"),
        "error_text": columns.get("error_text"),
    }


class _SendRun:
    """One run of ``send``: the main thread claims and records, workers talk to the provider."""

    def __init__(
        self, store: Store, client: ZhenziClient, campaign_id: int, me: str, options: SendOptions
    ) -> None:
        self.store = store
        self.client = client
        self.campaign_id = campaign_id
        self.me = me
        self.options = options
        self.limiter = RateLimiter(options.rate, options.burst) if options.rate else Unlimited()
        counts = queries.counts_by_state(store, campaign_id)
        self.progress = SendProgress(total=counts[PENDING] + counts[SENDING])
        self.blocked: AccountBlocked | None = None
        self.unavailable: Transient | None = None
        self.crashed: BaseException | None = None
        self.interrupted = False
        self._last_heartbeat = time.monotonic()
        self._outstanding = 0  # claims handed to workers whose outcome has not come back
        self._exhausted = False
        self._unwritten: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        self._give_ups = 0  # consecutive messages whose retries were all used up

    def run(self) -> None:
        """Resolve what an earlier run left unknown, send, then resolve what this run left."""
        try:
            self.resolve_in_flight()
            for _ in range(MAX_PASSES):
                self.send_pending()
                if self._stopping() or not self.resolve_in_flight():
                    break
        except KeyboardInterrupt:
            self.interrupted = True

    # -- unknown outcomes ----

    def resolve_in_flight(self) -> int:
        """Look up every message left ``sending``: found → sent, unknown → pending again.

        Only this process sends the campaign (the sender lock), so any earlier request for these
        messages is already in the past: one visibility window from now, a lookup sees it.
        Returns how many went back to pending.
        """
        left = queries.in_flight(self.store, self.campaign_id)
        if not left:
            return 0
        settled_from = time.monotonic()

        def look_up(claim: Claim) -> dict[str, Any] | None:
            self.limiter.acquire()
            try:
                record = self.client.find_settled(claim.message_id, settled_from)
            except (Transient, AccountBlocked):
                return None  # still unknown: stays `sending` for the next pass or run
            if record is None:
                return _outcome(claim, PENDING, 0, error_text="not received by the provider")
            self.progress.confirmed_by_lookup += 1
            return _outcome(claim, SENT, 0, sent_at=queries.utcnow())

        with ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="lookup") as pool:
            outcomes = [o for o in pool.map(look_up, left) if o is not None]
        queries.record_outcomes(self.store, outcomes)
        self.progress.sent += sum(o["state"] == SENT for o in outcomes)
        self._heartbeat()
        return sum(o["state"] == PENDING for o in outcomes)

    # -- the main loop ----

    def send_pending(self) -> None:
        work: queue.Queue[Claim | None] = queue.Queue()
        results: queue.Queue[dict[str, Any]] = queue.Queue()
        workers = [
            threading.Thread(
                target=self._worker, args=(work, results), daemon=True, name=f"send-{i}"
            )
            for i in range(self.options.concurrency)
        ]
        for worker in workers:
            worker.start()
        try:
            self._pump(work, results)
        except KeyboardInterrupt:
            # Ctrl-C / SIGTERM: let in-flight requests finish and record them, then stop.
            self.interrupted = True
            self.options.stop.set()
            self._pump(work, results)
        finally:
            for _ in workers:
                work.put(None)
        for worker in workers:
            worker.join()

    def _stopping(self) -> bool:
        return self.options.stop.is_set()

    def _pump(self, work: queue.Queue, results: queue.Queue) -> None:
        """Keep the workers fed with claims; write outcomes in batches; stop when all are back.

        Re-entrant: after Ctrl-C it is called again to collect what is still in flight.
        """
        claim_size = min(self.options.batch_size, 4 * self.options.concurrency)
        while True:
            if not (self._exhausted or self._stopping()) and (
                self._outstanding < 2 * self.options.concurrency
            ):
                claims = queries.claim_batch(self.store, self.campaign_id, claim_size)
                self._exhausted = not claims
                for claim in claims:
                    work.put(claim)
                self._outstanding += len(claims)
            if self._outstanding == 0 and (self._exhausted or self._stopping()):
                break
            arrived = self._drain(results)
            self._outstanding -= len(arrived)
            if any(outcome["state"] == PENDING for outcome in arrived):
                self._exhausted = False  # a transient give-up went back to the queue
            self._unwritten.extend(arrived)
            if self._unwritten and (
                self._outstanding == 0
                or len(self._unwritten) >= self.options.batch_size
                or time.monotonic() - self._last_flush >= FLUSH_EVERY
            ):
                self._flush()
            self._heartbeat()
        self._flush()

    def _flush(self) -> None:
        outcomes, self._unwritten = self._unwritten, []
        self._last_flush = time.monotonic()
        self._write(outcomes)

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

    def _write(self, outcomes: list[dict[str, Any]]) -> None:
        if not outcomes:
            return
        queries.record_outcomes(self.store, outcomes)
        for outcome in outcomes:
            if outcome["state"] == SENT:
                self.progress.sent += 1
            elif outcome["state"] == FAILED:
                self.progress.failed += 1
            elif outcome["state"] == SENDING:
                self.progress.unknown += 1
        if self.options.on_progress:
            self.options.on_progress(self.progress)

    def _heartbeat(self) -> None:
        if time.monotonic() - self._last_heartbeat >= HEARTBEAT_EVERY:
            queries.heartbeat(self.store, self.campaign_id, self.me)
            self._last_heartbeat = time.monotonic()

    # -- workers ----

    def _worker(self, work: queue.Queue, results: queue.Queue) -> None:
        while (claim := work.get()) is not None:
            if self._stopping():
                results.put(_outcome(claim, PENDING, 0))
                continue
            self.limiter.acquire()
            if self._stopping():
                results.put(_outcome(claim, PENDING, 0))
                continue
            results.put(self._send_one(claim))

    def _send_one(self, claim: Claim) -> dict[str, Any]:
        try:
            result = self.client.send(claim.phone, claim.content, claim.message_id)
        except MessageRejected as exc:
            if exc.maybe_sent:
                return self._unknown(claim, exc)
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
        if result.confirmed_by_lookup:
            self.progress.confirmed_by_lookup += 1
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
        return _outcome(claim, SENDING, requests, error_text=f"outcome unknown: {exc}")

    # -- the end ----

    def finish(self, name: str) -> SendProgress:
        if self.crashed is not None:
            raise self.crashed
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
        if self.interrupted:
            queries.update_campaign(self.store, self.campaign_id, stop_reason="interrupted")
            raise SendStopped(f"stopped; {resume}")
        return self.progress
