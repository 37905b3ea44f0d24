"""Settle messages whose outcome is unknown by asking the provider, never by sending again."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from campaigns.errors import AccountBlocked, Transient
from campaigns.provider.ratelimit import Limiter
from campaigns.sending import outcomes
from campaigns.sending.options import SendProgress
from campaigns.store.campaign_queries import utcnow
from campaigns.store.db import Store
from campaigns.store.models import PENDING, SENT
from campaigns.store.outcomes import Outcome, record_outcomes
from campaigns.store.send_queries import Claim

if TYPE_CHECKING:
    from campaigns.provider.client import ZhenziClient


class Lookups:
    def __init__(
        self,
        store: Store,
        client: ZhenziClient,
        limiter: Limiter,
        me: str,
        concurrency: int,
        progress: SendProgress,
    ) -> None:
        self.store = store
        self.client = client
        self.limiter = limiter
        self.me = me
        self.concurrency = concurrency
        self.progress = progress

    def resolve(self, claims: list[Claim]) -> int:
        """Look each claim up: found → sent, unknown to the provider → pending again.

        Whoever sent these before is gone or is this run, so every earlier request is in the
        past: one lookup window from now, the provider shows it. A lookup that fails leaves its
        message ``sending`` for the next pass or run. Returns how many went back to pending.
        """
        if not claims:
            return 0
        settled_from = time.monotonic()

        def look_up(claim: Claim) -> Outcome | None:
            self.limiter.acquire()
            try:
                record = self.client.find_settled(claim.message_id, settled_from)
            except (Transient, AccountBlocked):
                return None  # still unknown: stays `sending`
            # requests=1: the attempt the claim counted did happen, whatever became of it.
            if record is None:
                return outcomes.put_back(claim, 1, "not received by the provider")
            return outcomes.attempted(claim, SENT, 1, sent_at=utcnow())

        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="lookup") as pool:
            settled = [o for o in pool.map(look_up, claims) if o is not None]
        record_outcomes(self.store, settled, self.me)
        found = sum(o.state == SENT for o in settled)
        self.progress.sent += found
        self.progress.confirmed_by_lookup += found
        return sum(o.state == PENDING for o in settled)
