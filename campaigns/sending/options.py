"""What a caller hands a send (``SendOptions``) and gets back (``SendProgress``, ``SendPlan``)."""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from campaigns.schedule import Cap, Clock, Window, shanghai_now
from campaigns.sending.pacing import DEFAULT_CAP, RateReport
from campaigns.store.models import DEFERRED, FAILED, SENDING, SENT, SUPPRESSED
from campaigns.store.outcomes import Outcome


@dataclass
class SendProgress(RateReport):
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

    def count(self, outcome: Outcome) -> None:
        """Add one recorded outcome (a message put back to ``pending`` counts nowhere)."""
        if outcome.state == SENT:
            self.sent += 1
        elif outcome.state == FAILED:
            self.failed += 1
        elif outcome.state == SENDING:
            self.unknown += 1
        elif outcome.state == DEFERRED:
            self.deferred += 1
        elif outcome.state == SUPPRESSED:
            self.suppressed += 1


def resume_command(name: str) -> str:
    """The command that resumes ``name`` with its stored settings, quoted for a shell."""
    return f"campaigns send {shlex.quote(name)}"


@dataclass
class SendOptions:
    # How to send: what a user chooses for a campaign.
    rate: float | None = None
    # The cap on requests in flight; below it the run keeps rate × latency in flight (pacing).
    concurrency: int = DEFAULT_CAP
    batch_size: int = 200
    window: Window | None = None  # daily hours, Asia/Shanghai
    start_at: datetime | None = None
    until: datetime | None = None
    no_wait: bool = False  # outside the window / before --at: exit instead of waiting
    cap: Cap | None = None  # per number, across campaigns
    # Pause the campaign when more than this share of the last N sends failed permanently.
    error_budget: tuple[float, int] = (0.20, 200)
    allow_partial: bool = False  # start even when the balance cannot cover the campaign
    # How this run talks to its caller, and the clock it reads (tests inject one).
    on_progress: Callable[[SendProgress], None] | None = None
    on_wait: Callable[[str], None] | None = None
    clock: Clock = shanghai_now
    sleep: Callable[[float], None] = time.sleep
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass
class SendPlan:
    campaign: str
    messages: int
    segments: int
    balance: int | None = None

    @property
    def covered(self) -> bool:
        return self.balance is None or self.balance >= self.segments
