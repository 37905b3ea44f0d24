"""Campaign controls that run from any terminal: pause, cancel, retry, suppression, test sends."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from campaigns import ids
from campaigns.errors import AccountBlocked, MessageRejected, Transient, UserError
from campaigns.store import control_queries
from campaigns.store.campaign_queries import campaign_by_name, update_campaign
from campaigns.store.db import Store
from campaigns.store.models import CANCEL, FAILED, PAUSE, SENT, UNDELIVERED

if TYPE_CHECKING:
    from campaigns.provider.client import ZhenziClient

RETRYABLE = (FAILED, UNDELIVERED)


def pause(store: Store, name: str) -> None:
    """A running send notices within a second, finishes in-flight requests and stops."""
    campaign = campaign_by_name(store, name)
    if campaign.control == CANCEL:
        raise UserError(f"campaign {name!r} is cancelled; there is nothing to pause")
    update_campaign(store, campaign.id, control=PAUSE, stop_reason="paused")


def cancel(store: Store, name: str) -> int:
    """Stop for good: unsent messages become ``cancelled``. Returns how many."""
    campaign = campaign_by_name(store, name)
    update_campaign(store, campaign.id, control=CANCEL, stop_reason="cancelled")
    return control_queries.cancel_unsent(store, campaign.id)


def retry(
    store: Store, name: str, states: Sequence[str] = RETRYABLE, codes: Sequence[int] = ()
) -> int:
    """Put chosen messages back to pending under new messageIds (the old ones kept as history).

    A message is never sent again under an id the provider already has: its lookups would
    answer for the old attempt.
    """
    campaign = campaign_by_name(store, name)
    if campaign.control == CANCEL:
        raise UserError(f"campaign {name!r} is cancelled; it never sends again")
    bad = sorted(set(states) - {FAILED, UNDELIVERED, "expired"})
    if bad:
        raise UserError(f"--state: can only retry failed, undelivered or expired, not {bad}")
    return control_queries.retry_messages(store, campaign.id, list(states), list(codes))


@dataclass
class SuppressionChange:
    changed: int
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (as given, reason)


def _numbers(items: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Normalise numbers given directly or in files (any file `campaigns import` can read)."""
    import pandas as pd

    from campaigns.intake.phones import normalise_phones
    from campaigns.intake.read import read_recipients

    raw: list[str] = []
    for item in items:
        if Path(item).is_file():
            recipients = read_recipients(item)
            for chunk in recipients.chunks:
                raw.extend(chunk.frame[recipients.phone_column].tolist())
        else:
            raw.append(item)
    phones, reasons = normalise_phones(pd.Series(raw, dtype=object))
    good = sorted({phone for phone, reason in zip(phones, reasons, strict=True) if not reason})
    bad = [(given, reason) for given, reason in zip(raw, reasons, strict=True) if reason]
    return good, bad


def suppress(
    store: Store, items: Iterable[str], reason: str = "opted out (退订)"
) -> SuppressionChange:
    phones, rejected = _numbers(items)
    return SuppressionChange(control_queries.add_suppressions(store, phones, reason), rejected)


def unsuppress(store: Store, items: Iterable[str]) -> SuppressionChange:
    phones, rejected = _numbers(items)
    return SuppressionChange(control_queries.remove_suppressions(store, phones), rejected)


@dataclass
class TestResult:
    phone: str
    message_id: str
    ok: bool
    detail: str


def send_tests(
    store: Store, client: ZhenziClient, name: str, numbers: Sequence[str]
) -> list[TestResult]:
    """Send the campaign's first message to test numbers; recorded apart, the campaign untouched."""
    phones, rejected = _numbers(numbers)
    if rejected:
        given, why = rejected[0]
        raise UserError(f"--test {given!r} is not a mainland mobile number ({why})")
    campaign = campaign_by_name(store, name)
    sample = control_queries.first_message(store, campaign.id)
    if sample is None:
        raise UserError(f"campaign {name!r} has no valid message to test")
    content, params = sample
    results = []
    for phone in phones:
        earlier = control_queries.count_test_sends(store, campaign.id)
        message_id = ids.id_for_test_send(campaign.token, earlier + 1)
        try:
            client.send_message(
                phone, message_id, content=content, template_id=campaign.template_id, params=params
            )
            result = TestResult(phone, message_id, True, "sent")
        except (MessageRejected, AccountBlocked) as exc:
            result = TestResult(phone, message_id, False, f"code {exc.code}: {exc.meaning}")
        except Transient as exc:
            result = TestResult(phone, message_id, False, f"provider unavailable: {exc}")
        control_queries.record_test_send(
            store,
            campaign.id,
            phone,
            message_id,
            content,
            SENT if result.ok else FAILED,
            result.detail,
        )
        results.append(result)
    return results
