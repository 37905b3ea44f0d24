"""Leases and fencing: a dead sender's messages are taken over; a slow one cannot overwrite."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from campaigns.importing import import_file
from campaigns.sending import is_dead_here, sender_name
from campaigns.store import send_queries
from campaigns.store.campaign_queries import campaign_by_name, counts_by_state, utcnow
from campaigns.store.db import Store
from campaigns.store.models import SENDING, SENT, Message
from campaigns.store.outcomes import Outcome, record_outcomes
from tests.support.recipients import ledger_counts, valid_phones, write_csv

LEASE = timedelta(seconds=30)


def store_with_campaign(url: str, tmp_path) -> tuple[Store, int]:
    store = Store(url)
    import_file(
        store, write_csv(tmp_path / "l.csv", valid_phones(10)), campaign="c", message="【测】{姓名}"
    )
    return store, campaign_by_name(store, "c").id


def expire(store: Store, holder: str) -> None:
    with store.session.begin() as session:
        session.execute(
            update(Message)
            .where(Message.claimed_by == holder)
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )


def test_claims_never_overlap_and_live_leases_are_left_alone(any_db_url, tmp_path):
    store, campaign = store_with_campaign(any_db_url, tmp_path)
    first = send_queries.claim_batch(store, campaign, 6, "a@h/1", LEASE)
    second = send_queries.claim_batch(store, campaign, 6, "b@h/2", LEASE)
    assert len(first) == 6 and len(second) == 4
    assert not {c.id for c in first} & {c.id for c in second}
    assert send_queries.take_over(store, campaign, "c@h/3", LEASE, dead=[], limit=100) == []


def test_expired_lease_is_taken_over_and_the_slow_owner_is_fenced_off(any_db_url, tmp_path):
    store, campaign = store_with_campaign(any_db_url, tmp_path)
    slow = send_queries.claim_batch(store, campaign, 3, "slow@h/1", LEASE)
    expire(store, "slow@h/1")
    taken = send_queries.take_over(store, campaign, "next@h/2", LEASE, dead=[], limit=100)
    assert [c.id for c in taken] == [c.id for c in slow]
    # The slow sender finally writes its outcome: fenced, nothing changes.
    record_outcomes(store, [Outcome(c.id, SENT, attempts=1) for c in slow], "slow@h/1")
    assert counts_by_state(store, campaign)[SENDING] == 3
    record_outcomes(store, [Outcome(c.id, SENT, attempts=1) for c in taken], "next@h/2")
    assert counts_by_state(store, campaign)[SENT] == 3


def test_a_dead_process_on_this_host_is_recognised_at_once():
    me = sender_name()
    assert not is_dead_here(me)
    assert is_dead_here("999999999@" + me.split("@")[1])
    assert not is_dead_here("1@some-other-host/abc")  # elsewhere: wait for the lease


def test_shared_bucket_hands_out_consecutive_slots(any_db_url, tmp_path):
    store, _ = store_with_campaign(any_db_url, tmp_path)
    first = send_queries.reserve_slots(store, "acct", 10, 0.01)
    second = send_queries.reserve_slots(store, "acct", 10, 0.01)
    assert abs(second - first - 0.1) < 1e-6


def test_a_failing_worker_ends_the_run_and_the_next_send_finishes(
    settings, sandbox, tmp_path, monkeypatch
):
    from campaigns import api
    from campaigns.sending import SendOptions

    path = write_csv(tmp_path / "w.csv", valid_phones(20))
    api.import_file(settings, path, campaign="w", message="【测】{姓名}")

    def broken(*_args):
        raise RuntimeError("bucket unavailable")

    monkeypatch.setattr(send_queries, "reserve_slots", broken)
    with pytest.raises(RuntimeError, match="bucket unavailable"):
        api.send(settings, "w", SendOptions(rate=100))  # must return, not hang
    monkeypatch.undo()
    api.send(settings, "w", SendOptions(rate=100))
    counts = ledger_counts(sandbox)
    assert len(counts) == 20 and max(counts.values()) == 1
    assert api.status(settings, "w").by_state["sent"] == 20
