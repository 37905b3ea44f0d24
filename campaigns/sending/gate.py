"""The gate a claim passes before any request: schedule, pause/cancel, suppression list, cap.

It looks at the campaign's controls, new suppressions and deferred messages now due about twice
a second, decides whether the schedule lets the run claim more, and screens each batch of
claims. What it decides to stop, it tells the run's ``Stop``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from campaigns.errors import StopReason
from campaigns.schedule import Cap, as_utc_naive, gate
from campaigns.sending import outcomes
from campaigns.sending.options import SendOptions
from campaigns.sending.stop import Stop
from campaigns.store import send_queries
from campaigns.store.campaign_queries import campaign_control
from campaigns.store.db import Store
from campaigns.store.models import CANCEL, PAUSE
from campaigns.store.outcomes import Outcome
from campaigns.store.send_queries import Claim

CHECK_EVERY = 0.5  # how often a run looks at pause/cancel, the suppression list and the clock


class Gate:
    """``on_wake`` is called when deferred messages became pending again (there is more work)."""

    def __init__(
        self,
        store: Store,
        campaign_id: int,
        options: SendOptions,
        stop: Stop,
        on_wake: Callable[[], None],
    ) -> None:
        self.store = store
        self.campaign_id = campaign_id
        self.options = options
        self.stop = stop
        self.on_wake = on_wake
        self._last_check = 0.0
        self._suppressed, self._suppressed_seen = send_queries.suppressed_since(store, None)

    def may_claim(self, in_flight: int) -> bool:
        """True when the run may claim more now; waits, or stops the run, when the schedule
        says so (only once the ``in_flight`` requests have come back)."""
        self.look_around()
        return not self.stop.is_set() and self._schedule_allows(in_flight)

    def look_around(self) -> None:
        """About twice a second: pause/cancel, new suppressions, deferred messages now due."""
        if time.monotonic() - self._last_check < CHECK_EVERY:
            return
        self._last_check = time.monotonic()
        self.check_controls()
        fresh, self._suppressed_seen = send_queries.suppressed_since(
            self.store, self._suppressed_seen
        )
        self._suppressed |= fresh
        now = as_utc_naive(self.options.clock())
        if send_queries.wake_deferred(self.store, self.campaign_id, now):
            self.on_wake()

    def check_controls(self) -> bool:
        """False (and the run stops) once `campaigns pause` or `cancel` was given."""
        control = campaign_control(self.store, self.campaign_id)
        if control == CANCEL:
            self.stop.request(StopReason.CANCELLED)
        elif control == PAUSE:
            self.stop.request(StopReason.PAUSED, "paused by `campaigns pause`")
        return control not in (PAUSE, CANCEL)

    def is_suppressed(self, phone: str) -> bool:
        """On the list, added while this campaign runs (claims were screened when made)."""
        return phone in self._suppressed

    # -- the schedule ----

    def _schedule_allows(self, in_flight: int) -> bool:
        options = self.options
        verdict = gate(
            options.clock(), window=options.window, start_at=options.start_at, until=options.until
        )
        if verdict.open:
            return True
        if in_flight:
            return False  # let in-flight requests come back first
        if verdict.wait_until is None or options.no_wait:
            when = (
                f"; send again after {verdict.wait_until:%Y-%m-%d %H:%M}"
                if verdict.wait_until
                else ""
            )
            self.stop.request(StopReason.SCHEDULE, f"{verdict.reason}{when}")
            return False
        if options.on_wait:
            options.on_wait(f"{verdict.reason}; waiting until {verdict.wait_until:%Y-%m-%d %H:%M}")
        self._wait_until(verdict.wait_until)
        return False

    def _wait_until(self, moment: datetime) -> None:
        """Sleep in short steps so pause, cancel and Ctrl-C are still noticed."""
        while not self.stop.is_set():
            left = (moment - self.options.clock()).total_seconds()
            if left <= 0:
                return
            self.options.sleep(min(left, CHECK_EVERY))
            if not self.check_controls():
                return

    # -- screening claims ----

    def screen(self, claims: list[Claim]) -> tuple[list[Claim], list[Outcome]]:
        """(claims to send, outcomes of the others): suppressed numbers, numbers over the cap."""
        phones = [claim.phone for claim in claims]
        suppressed = send_queries.suppressed_among(self.store, phones) | (
            self._suppressed & set(phones)
        )
        capped = self._capped(phones)
        keep, screened = [], []
        for claim in claims:
            if claim.phone in suppressed:
                screened.append(outcomes.suppressed(claim))
            elif claim.phone in capped:
                text = _cap_text(self.options.cap)
                screened.append(outcomes.deferred(claim, capped[claim.phone], None, text))
            else:
                keep.append(claim)
        return keep, screened

    def _capped(self, phones: list[str]) -> dict[str, datetime]:
        """Numbers that reached the cap, and when each may receive again."""
        cap = self.options.cap
        if cap is None:
            return {}
        now = as_utc_naive(self.options.clock())
        received = send_queries.recently_received(self.store, phones, now - cap.period)
        return {
            phone: oldest + cap.period
            for phone, (count, oldest) in received.items()
            if count >= cap.count
        }


def _cap_text(cap: Cap | None) -> str:
    assert cap is not None  # only capped claims ask
    hours = cap.period.total_seconds() / 3600
    period = f"{hours:g}h" if hours < 48 else f"{hours / 24:g}d"
    return f"cap {cap.count}/{period} reached: deferred until the window allows"
