"""The outcomes a send records for a claim, one constructor for each thing that can happen."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from campaigns.store.models import DEFERRED, PENDING, SENDING, SUPPRESSED
from campaigns.store.outcomes import Outcome
from campaigns.store.send_queries import Claim


def attempted(
    claim: Claim,
    state: str,
    requests: int,
    *,
    sent_at: datetime | None = None,
    error_code: int | None = None,
    error_text: str | None = None,
    due_at: datetime | None = None,
) -> Outcome:
    """``requests`` send requests were made for this claim (0: none; the claim counted one)."""
    return Outcome(
        claim.id,
        state,
        attempts=claim.attempts - 1 + requests,
        sent_at=sent_at,
        error_code=error_code,
        error_text=error_text,
        due_at=due_at,
    )


def put_back(claim: Claim, requests: int = 0, note: str | None = None) -> Outcome:
    """Back to ``pending``: the provider never got it, so another run may send it."""
    return attempted(claim, PENDING, requests, error_text=note)


def unknown(claim: Claim, exc: Exception, requests: int | None = None) -> Outcome:
    """The request may have reached the provider: stay ``sending``, keep the lease, look it up.
    ``requests``: how many were made (by default what the error says, else one)."""
    if requests is None:
        requests = getattr(exc, "requests", 1)
    outcome = attempted(claim, SENDING, requests, error_text=f"outcome unknown: {exc}")
    return replace(outcome, keep_lease=True)


def deferred(
    claim: Claim, due: datetime, code: int | None, text: str, requests: int = 0
) -> Outcome:
    return attempted(claim, DEFERRED, requests, error_code=code, error_text=text, due_at=due)


def suppressed(claim: Claim, requests: int = 0) -> Outcome:
    return attempted(claim, SUPPRESSED, requests, error_text="on the suppression list")
