"""The worker pool: threads that take claims, talk to the provider and hand back outcomes.

Every claim handed in comes back as exactly one outcome, whatever happens (a bug included), so
the run always knows when all its requests are back. A worker never starts a request once the
run is stopping, on a lease about to expire, or for a number suppressed meanwhile.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from campaigns.errors import (
    AccountBlocked,
    CampaignsError,
    MessageRejected,
    StopReason,
    Transient,
)
from campaigns.provider.ratelimit import Limiter
from campaigns.schedule import Clock, as_utc_naive, next_shanghai_midnight
from campaigns.sending import outcomes
from campaigns.sending.leases import Leases
from campaigns.sending.stop import Stop
from campaigns.store.campaign_queries import utcnow
from campaigns.store.models import FAILED, SENT
from campaigns.store.outcomes import Outcome
from campaigns.store.send_queries import Claim

if TYPE_CHECKING:
    from campaigns.provider.client import SendResult, ZhenziClient

DAILY_LIMIT = 109  # this number's daily limit: deferred to the next Shanghai day, not failed
PROVIDER_DOWN_AFTER = 10  # consecutive messages that used up all retries

Work = tuple[Claim, float] | None  # a claim and when it was made (monotonic); None: stop


class GiveUps:
    """Consecutive messages whose retries were all used up, over the whole run (every pass):
    one unlucky message goes back; many in a row mean the provider is down."""

    def __init__(self, stop: Stop) -> None:
        self.stop = stop
        self._count = 0
        self._lock = threading.Lock()

    def note(self, exc: Transient | None) -> None:
        """``exc``: this message gave up; None: it went. Enough in a row stop the run."""
        with self._lock:
            self._count = self._count + 1 if exc else 0
            down = self._count >= PROVIDER_DOWN_AFTER
        if down:
            self.stop.request(StopReason.PROVIDER_DOWN, f"the provider is unavailable ({exc})")


class WorkerPool:
    """``size`` threads; ``submit`` claims, ``drain`` outcomes, ``close`` when done."""

    def __init__(
        self,
        client: ZhenziClient,
        template_id: str | None,
        limiter: Limiter,
        leases: Leases,
        is_suppressed: Callable[[str], bool],
        stop: Stop,
        give_ups: GiveUps,
        clock: Clock,
        size: int,
    ) -> None:
        self.client = client
        self.template_id = template_id
        self.limiter = limiter
        self.leases = leases
        self.is_suppressed = is_suppressed
        self.stop = stop
        self.give_ups = give_ups
        self.clock = clock
        self._work: queue.Queue[Work] = queue.Queue()
        self._results: queue.Queue[Outcome] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._serve, daemon=True, name=f"send-{i}") for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, claim: Claim, claimed_at: float) -> None:
        self._work.put((claim, claimed_at))

    def drain(self, wait: float = 0.1) -> list[Outcome]:
        """The outcomes that came back: waits up to ``wait`` for the first, takes the rest."""
        try:
            batch = [self._results.get(timeout=wait)]
        except queue.Empty:
            return []
        return batch + self.leftovers()

    def leftovers(self) -> list[Outcome]:
        """Whatever outcomes are there now, without waiting."""
        batch = []
        while True:
            try:
                batch.append(self._results.get_nowait())
            except queue.Empty:
                return batch

    def close(self) -> None:
        """No more work: each thread ends after the claims queued before this."""
        for _ in self._threads:
            self._work.put(None)

    def join(self) -> None:
        for thread in self._threads:
            thread.join()

    # -- one thread ----

    def _serve(self) -> None:
        while (item := self._work.get()) is not None:
            claim, claimed_at = item
            try:
                self._results.put(self._handle(claim, claimed_at))
            except Exception as exc:  # every claim must come back, or the run never ends
                self.stop.crash(exc)
                self._results.put(
                    outcomes.unknown(claim, CampaignsError(f"internal error: {exc!r}"))
                )

    def _handle(self, claim: Claim, claimed_at: float) -> Outcome:
        if not self.stop.is_set():
            self.limiter.acquire()
        if self.stop.is_set() or not self.leases.may_send(claimed_at):
            return outcomes.put_back(claim)
        if self.is_suppressed(claim.phone):  # added while this campaign runs
            return outcomes.suppressed(claim)
        return self._send_one(claim)

    def _send_one(self, claim: Claim) -> Outcome:
        try:
            result = self._request(claim)
        except MessageRejected as exc:
            if exc.maybe_sent:
                return outcomes.unknown(claim, exc)
            if exc.code == DAILY_LIMIT:
                due = as_utc_naive(next_shanghai_midnight(self.clock()))
                return outcomes.deferred(claim, due, DAILY_LIMIT, exc.meaning, exc.requests)
            text = exc.meaning or exc.text
            return outcomes.attempted(
                claim, FAILED, exc.requests, error_code=exc.code, error_text=text
            )
        except AccountBlocked as exc:
            self.stop.refused(exc)
            return outcomes.unknown(claim, exc) if exc.maybe_sent else outcomes.put_back(claim)
        except Transient as exc:
            # The client already retried with backoff: this message goes back (or stays
            # unknown), and the run counts it.
            self.give_ups.note(exc)
            return outcomes.unknown(claim, exc) if exc.maybe_sent else outcomes.put_back(claim)
        except Exception as exc:  # a bug must not lose track of a message that may have gone out
            return self._crashed(claim, exc)
        self.give_ups.note(None)
        return outcomes.attempted(claim, SENT, result.requests, sent_at=utcnow())

    def _request(self, claim: Claim) -> SendResult:
        return self.client.send_message(
            claim.phone,
            claim.message_id,
            content=claim.content,
            template_id=self.template_id,
            params=claim.params,
            pace=self.limiter.acquire,
        )

    def _crashed(self, claim: Claim, exc: Exception) -> Outcome:
        """A bug: the run stops and re-raises it; the message may have gone, so it is unknown."""
        self.stop.crash(exc)
        return outcomes.unknown(claim, CampaignsError(f"internal error: {exc!r}"))
