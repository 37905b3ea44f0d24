"""The worker pool: threads that take claims, talk to the provider and hand back outcomes.

Every claim handed in comes back as exactly one outcome, whatever happens (a bug included), so
the run always knows when all its requests are back. A worker never starts a request once the
run is stopping, on a lease about to expire, or for a number suppressed meanwhile.

Each request is one attempt. A message whose attempt failed transiently is *parked* with a due
time (its backoff) and its worker moves on; one whose outcome is unknown is parked until the
provider can show it, then looked up, and sent again only if the lookup says "not found". A
parked message stays ``sending`` under this run's lease (the heartbeat keeps it): no other
sender takes it over while this run lives, and after a crash it is resolved by lookup.

A message whose outcome is unknown is looked up early and then less often: "found" settles it
at once, "not found" counts only once the lookup wait has passed. A send whose reply is held up
far beyond the usual latency is looked up while it is still out (a *hedge*): if the provider
shows the message it is settled as sent, the late reply is ignored, and the run does not wait
for it. Neither ever sends anything: only the "not found" after the lookup wait allows a re-send.

How many requests are in flight follows ``pacing.InFlight``; a reply far later than usual stops
holding its slot, so a few held replies do not stall the pipeline. Threads start only when work
waits and none is idle, never more than the cap plus ``pacing.SPARE_THREADS``.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from campaigns.errors import (
    AccountBlocked,
    CampaignsError,
    ConnectionProblem,
    MessageRejected,
    StopReason,
    TlsError,
    Transient,
)
from campaigns.provider.ratelimit import Limiter
from campaigns.schedule import Clock, as_utc_naive, next_shanghai_midnight
from campaigns.sending import outcomes
from campaigns.sending.leases import Leases
from campaigns.sending.pacing import SPARE_THREADS, Answers, InFlight
from campaigns.sending.stop import Stop
from campaigns.store.campaign_queries import utcnow
from campaigns.store.models import FAILED, SENT
from campaigns.store.outcomes import Outcome
from campaigns.store.send_queries import Claim

if TYPE_CHECKING:
    from campaigns.provider.client import ZhenziClient

DAILY_LIMIT = 109  # this number's daily limit: deferred to the next Shanghai day, not failed
PROVIDER_DOWN_AFTER = 10  # consecutive messages that used up all retries

IDLE_CHECK = 0.1  # how often a waiting worker looks again for due parked work or a stop


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


@dataclass(eq=False)
class _Job:
    """One claim on its way through the pool, over all its attempts and lookups."""

    claim: Claim
    claimed_at: float  # monotonic: the lease must still hold when a request starts
    requests: int = 0  # send requests made for it in this run
    failures: int = 0  # transient failures (sends and lookups) so far
    unknown_since: float | None = None  # the last send that may have arrived: look it up first
    lookups: int = 0  # lookups since then that did not find it (too early to be sure)
    look_early: bool = True  # False after an error reply: only the conclusive lookup is worth it
    last_error: Exception | None = None
    settled: bool = False  # its one outcome is given (set under the pool's lock)


@dataclass(eq=False)
class _Request:
    """A request in flight. For a send, ``hedges`` counts the lookups made while it was out."""

    job: _Job
    started: float
    hedges: int = 0
    done: bool = False


@dataclass(order=True)
class _Due:
    """Work for later: a parked job's next step, or a hedge lookup of a request still out."""

    due: float
    order: int
    task: _Job | _Request = field(compare=False)


class WorkerPool:
    """``submit`` claims, ``drain`` outcomes, ``close`` when done, then ``join``."""

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
        sizing: InFlight,
    ) -> None:
        self.client = client.single_attempt()  # the pool retries itself
        self.max_attempts = client.max_attempts
        self.backoff_for = client.backoff_for
        self.visibility_wait = client.visibility_wait
        self.template_id = template_id
        self.limiter = limiter
        self.leases = leases
        self.is_suppressed = is_suppressed
        self.stop = stop
        self.give_ups = give_ups
        self.clock = clock
        self.sizing = sizing
        self.requests = 0  # send requests and lookups made
        self.failed_requests = 0  # ... of which failed transiently
        self.answers = Answers()
        self._results: queue.Queue[Outcome] = queue.Queue()
        self._cond = threading.Condition()
        self._ready: deque[_Job] = deque()
        self._later: list[_Due] = []  # a heap
        self._order = itertools.count()
        self._open = 0  # jobs handed in whose outcome is not given yet
        self._busy = 0  # threads holding a task
        self._requesting: dict[int, _Request] = {}  # thread → its request in flight
        self._idle = 0
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def queued(self) -> int:
        """Claims handed in that no worker has taken yet."""
        return len(self._ready)

    def submit(self, claim: Claim, claimed_at: float) -> None:
        with self._cond:
            self._ready.append(_Job(claim, claimed_at))
            self._open += 1
            self._grow(time.monotonic())
            self._cond.notify()

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
        """No more work: the threads end once every claim handed in (parked too) is back."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def join(self) -> None:
        """Until every thread has ended, but those still waiting for a reply a hedge made
        pointless: they end on their own (daemons) when it comes or times out."""
        while True:
            with self._cond:
                late = {ident for ident, out in self._requesting.items() if out.job.settled}
                alive = [t for t in self._threads if t.is_alive() and t.ident not in late]
            if not alive:
                return
            alive[0].join(IDLE_CHECK)

    # -- who works on what ----

    def _grow(self, now: float) -> None:
        """Start a thread when work waits, none is idle and the target allows. Under the lock."""
        limit = self.sizing.cap + SPARE_THREADS
        if self._idle or len(self._threads) >= limit or not self._may_start(now):
            return
        if not self._ready and not self._due(now):
            return
        self._start_thread()

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._serve, daemon=True, name="send")
        self._threads.append(thread)
        thread.start()

    def _may_start(self, now: float) -> bool:
        """Fewer requests in flight than the target, not counting those held up for long."""
        if self._busy < self.sizing.target:
            return True
        overdue_after = self.sizing.overdue_after()
        held_up = sum(
            out.job.settled or now - out.started > overdue_after
            for out in self._requesting.values()
        )
        return self._busy - held_up < self.sizing.target

    def _due(self, now: float) -> bool:
        """Whether later work is due now (dropping hedges no longer needed). Under the lock."""
        while self._later and _pointless(self._later[0].task):
            heapq.heappop(self._later)
        return bool(self._later) and (self._later[0].due <= now or self.stop.is_set())

    def _next(self) -> _Job | _Request | None:
        with self._cond:
            while True:
                now = time.monotonic()
                due = self._due(now)
                if (due or self._ready) and self._may_start(now):
                    task = heapq.heappop(self._later).task if due else self._ready.popleft()
                    self._busy += 1
                    self._grow(now)
                    return task
                if self._closed and self._done(now):
                    self._cond.notify_all()
                    return None
                self._idle += 1
                self._cond.wait(self._wait(now))
                self._idle -= 1

    def _done(self, now: float) -> bool:
        """Every job handed in has its outcome. ``<= 0`` and the checks after it: a Ctrl-C
        landing inside ``submit`` (on the main thread) can leave ``_open`` one short; the job
        is then still queued, or (the run stopping) due."""
        return self._open <= 0 and not self._ready and not self._due(now)

    def _wait(self, now: float) -> float | None:
        if self._later and self._later[0].due > now:
            return min(IDLE_CHECK, self._later[0].due - now)
        if self._later or self._ready or self._closed:
            return IDLE_CHECK / 5  # work waits for a slot: a held-up request may free one
        return None

    def _park(self, job: _Job, due: float) -> None:
        self._later_at(due, job)
        with self._cond:
            self._cond.notify()

    def _later_at(self, due: float, task: _Job | _Request) -> None:
        """A thread is woken (or started) only when this is now the soonest work for later: a
        thread waiting for something sooner, or timed for at most ``IDLE_CHECK``, sees it
        anyway, and waking one for every send's hedge would wake threads hundreds of times a
        second. Started when none is idle: the only thread may be the one waiting for a reply."""
        with self._cond:
            if _pointless(task):
                return
            entry = _Due(due, next(self._order), task)
            heapq.heappush(self._later, entry)
            if self._later[0] is not entry:
                return
            if self._idle:
                self._cond.notify()
            elif len(self._threads) < self.sizing.cap + SPARE_THREADS:
                self._start_thread()

    def _settle(self, job: _Job, outcome: Outcome) -> None:
        """Give the job's one outcome, unless a hedge or the sender gave it first."""
        with self._cond:
            if job.settled:
                return
            job.settled = True
            self._open -= 1
            if self._open <= 0:  # the last one: waiting threads may be done
                self._cond.notify_all()
        self._results.put(outcome)
        if outcome.state in (SENT, FAILED):
            self.answers.note()

    @contextmanager
    def _request(self, job: _Job, *, hedged: bool = False) -> Iterator[None]:
        """Count a request in flight; measure it when a reply comes back. ``hedged``: look it
        up while it is still out once it is far later than usual."""
        me = threading.get_ident()
        out = _Request(job, time.monotonic())
        with self._cond:  # one lock round per request: _later_at re-enters it (an RLock)
            self._requesting[me] = out
            self.requests += 1
            if hedged:
                self._later_at(out.started + self.sizing.hedge_after(), out)
        try:
            yield
            self.sizing.observe(time.monotonic() - out.started)
        finally:
            with self._cond:
                out.done = True
                del self._requesting[me]

    # -- one thread ----

    def _serve(self) -> None:
        while (task := self._next()) is not None:
            job = task.job if isinstance(task, _Request) else task
            outcome = None
            try:
                if isinstance(task, _Request):
                    self._hedge(task)
                else:
                    outcome = self._step(task)
            except Exception as exc:  # every claim must come back, or the run never ends
                self.stop.crash(exc)
                outcome = outcomes.unknown(
                    job.claim, CampaignsError(f"internal error: {exc!r}"), max(1, job.requests)
                )
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify()
            if outcome is not None:
                self._settle(job, outcome)

    def _step(self, job: _Job) -> Outcome | None:
        """The job's next move: an outcome, or None when it was parked for later."""
        if job.settled:  # a hedge found it while it waited here
            return None
        if not self.stop.is_set():
            self.limiter.acquire()
        if self.stop.is_set() or not self.leases.may_send(job.claimed_at):
            return self._abandon(job)
        if job.unknown_since is not None:
            return self._look_up(job)
        if self.is_suppressed(job.claim.phone):  # added while this campaign runs
            return outcomes.suppressed(job.claim, job.requests)
        return self._send_one(job)

    def _abandon(self, job: _Job) -> Outcome:
        """The run stops, or the job gives up: unknown stays ``sending``, the rest goes back."""
        if job.unknown_since is not None:
            assert job.last_error is not None
            return outcomes.unknown(job.claim, job.last_error, job.requests)
        return outcomes.put_back(job.claim, job.requests)

    def _send_one(self, job: _Job) -> Outcome | None:
        claim = job.claim
        started = time.monotonic()
        try:
            with self._request(job, hedged=True):
                job.requests += 1
                self.client.send_message(
                    claim.phone,
                    claim.message_id,
                    content=claim.content,
                    template_id=self.template_id,
                    params=claim.params,
                )
        except Exception as exc:  # noqa: BLE001 - sorted by what it means below
            return None if job.settled else self._send_failed(job, exc, started)
        if job.settled:  # a hedge found it first; this reply is late news
            return None
        self.give_ups.note(None)
        return outcomes.attempted(claim, SENT, job.requests, sent_at=utcnow())

    def _send_failed(self, job: _Job, exc: Exception, started: float) -> Outcome | None:
        claim = job.claim
        if isinstance(exc, MessageRejected):
            if exc.code == DAILY_LIMIT:
                due = as_utc_naive(next_shanghai_midnight(self.clock()))
                return outcomes.deferred(claim, due, DAILY_LIMIT, exc.meaning, job.requests)
            text = exc.meaning or exc.text
            return outcomes.attempted(
                claim, FAILED, job.requests, error_code=exc.code, error_text=text
            )
        if isinstance(exc, AccountBlocked):
            self.stop.refused(exc)  # refused: this request was not sent
            return outcomes.put_back(claim, job.requests - 1)
        if isinstance(exc, Transient):
            return self._failed(job, exc, started if exc.maybe_sent else None)
        if isinstance(exc, TlsError | ConnectionProblem):
            job.requests -= 1  # it never left
            return self._cut_off(job, exc)
        # A bug must not lose track of a message that may have gone out.
        self.stop.crash(exc)
        return outcomes.unknown(claim, CampaignsError(f"internal error: {exc!r}"), job.requests)

    def _look_up(self, job: _Job) -> Outcome | None:
        """Did the send whose outcome is unknown arrive? Found: sent. Not found: send again, but
        only once the lookup wait has passed; before that, look again later."""
        assert job.unknown_since is not None
        asked_at = time.monotonic()
        try:
            with self._request(job):
                record = self.client.find(job.claim.message_id)
        except Transient as exc:
            return self._failed(job, exc, None)
        except AccountBlocked as exc:
            self.stop.refused(exc)
            return self._abandon(job)
        except (TlsError, ConnectionProblem) as exc:
            return self._cut_off(job, exc)
        if record is not None:
            self.give_ups.note(None)
            return outcomes.attempted(job.claim, SENT, job.requests, sent_at=utcnow())
        if asked_at < job.unknown_since + self.visibility_wait:  # too soon to be sure
            job.lookups += 1
            self._park(job, self._lookup_due(job))
            return None
        job.unknown_since, job.lookups = None, 0
        self._park(job, time.monotonic())  # never got it: send again, in turn
        return None

    def _lookup_due(self, job: _Job) -> float:
        """The next lookup of a message whose outcome is unknown: early ones can only confirm
        it; the last, at the end of the lookup wait, can also say it never arrived."""
        assert job.unknown_since is not None
        conclusive = job.unknown_since + self.visibility_wait
        if not job.look_early:
            return conclusive
        return min(job.unknown_since + self.sizing.lookup_after(job.lookups), conclusive)

    def _hedge(self, out: _Request) -> None:
        """Look up a send whose reply is held up. Found: it is sent, whatever the reply says
        when it comes. Not found: look again later, while it is still out; never send."""
        job = out.job
        if not self.stop.is_set():
            self.limiter.acquire()
        if _pointless(out) or self.stop.is_set():
            return
        try:
            with self._request(job):
                record = self.client.find(job.claim.message_id)
        except (CampaignsError, OSError):
            record = None  # the send itself still decides
        if record is not None:
            self.give_ups.note(None)
            self._settle(job, outcomes.attempted(job.claim, SENT, job.requests, sent_at=utcnow()))
            return
        out.hedges += 1
        self._later_at(out.started + self.sizing.hedge_after() * 2**out.hedges, out)

    def _failed(self, job: _Job, exc: Transient, maybe_sent_at: float | None) -> Outcome | None:
        """Park the job for its backoff (or until its next lookup); give up after the client's
        number of attempts."""
        with self._cond:
            self.failed_requests += 1
        job.failures += 1
        job.last_error = exc
        if maybe_sent_at is not None:
            job.unknown_since, job.lookups = maybe_sent_at, 0
            job.look_early = not exc.error_reply
        if job.failures >= self.max_attempts:
            self.give_ups.note(exc)
            return self._abandon(job)
        due = time.monotonic() + self.backoff_for(job.failures)
        if job.unknown_since is not None:
            due = max(due, self._lookup_due(job))
        self._park(job, due)
        return None

    def _cut_off(self, job: _Job, exc: TlsError | ConnectionProblem) -> Outcome:
        """TLS refused, or no request can be made as configured: stop the run. The request did
        not leave (a TLS refusal ends the handshake; a ConnectionProblem is raised before
        sending), so the message goes back unless an earlier send of it is still unknown."""
        self.stop.request(StopReason.CONNECTION, str(exc))
        return self._abandon(job)


def _pointless(task: _Job | _Request) -> bool:
    """Work no longer needed: its job has its outcome, or (a hedge) the reply came back."""
    if isinstance(task, _Request):
        return task.done or task.job.settled
    return task.settled
