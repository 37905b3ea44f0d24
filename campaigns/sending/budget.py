"""The error budget: pause a campaign whose recent sends fail for a permanent reason too often
(a broken template, a bad list), before it spends the whole list on failures."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from campaigns.errors import StopReason
from campaigns.sending.stop import Stop
from campaigns.store.campaign_queries import update_campaign
from campaigns.store.db import Store
from campaigns.store.models import FAILED, PAUSE, SENT
from campaigns.store.outcomes import Outcome

PERMANENT_CODES = frozenset({100, 101})  # a bad number or text: what the error budget counts


class ErrorBudget:
    def __init__(
        self, store: Store, campaign_id: int, budget: tuple[float, int], stop: Stop
    ) -> None:
        self.store = store
        self.campaign_id = campaign_id
        self.share, self.window = budget
        self.stop = stop
        self._recent: deque[bool] = deque(
            maxlen=self.window
        )  # True = failed for a permanent reason
        self._spent = False

    def note(self, outcomes: Iterable[Outcome]) -> None:
        """Watch each outcome as it arrives; pause once the recent failures pass the budget."""
        for outcome in outcomes:
            if outcome.state in (SENT, FAILED):
                self._recent.append(outcome.error_code in PERMANENT_CODES)
            failures = sum(self._recent)
            if len(self._recent) == self.window and failures > self.share * self.window:
                self._over(failures)
                return

    def _over(self, failures: int) -> None:
        if self._spent:
            return
        self._spent = True
        update_campaign(self.store, self.campaign_id, control=PAUSE)
        self.stop.request(
            StopReason.OVER_BUDGET,
            f"{failures} of the last {self.window} sends failed for a permanent reason "
            f"(more than {self.share:.0%}); check the message template and the list",
        )
