"""Reconcile maps each provider status to one state: exact counts, not just their sum."""

from __future__ import annotations

import pytest

from campaigns import api
from campaigns.store.models import DELIVERED, SENT, UNDELIVERED
from tests.support.recipients import valid_phones, write_csv


@pytest.mark.parametrize(
    ("undelivered_share", "delivered", "undelivered"), [(0.0, 40, 0), (1.0, 0, 40)]
)
def test_reconcile_counts_each_answer_in_its_own_state(
    settings, sandbox, tmp_path, undelivered_share, delivered, undelivered
):
    sandbox.config.undelivered_share = undelivered_share
    sandbox.config.delivery_delay_s = 0.0  # final as soon as it is accepted
    path = write_csv(tmp_path / "list.csv", valid_phones(40))
    api.import_file(settings, path, campaign="r", message="【测试】{姓名}您好")
    assert api.send(settings, "r").sent == 40

    progress = api.reconcile(settings, "r")

    assert (progress.delivered, progress.undelivered) == (delivered, undelivered)
    assert (progress.still_pending, progress.not_found, progress.expired, progress.errors) == (
        0,
        0,
        0,
        0,
    )
    by_state = api.status(settings, "r").by_state
    assert (by_state[DELIVERED], by_state[UNDELIVERED], by_state[SENT]) == (
        delivered,
        undelivered,
        0,
    )


def test_reconcile_leaves_messages_without_an_answer_sent(settings, sandbox, tmp_path):
    sandbox.config.delivery_delay_s = 600.0  # still pending at the provider
    path = write_csv(tmp_path / "list.csv", valid_phones(10))
    api.import_file(settings, path, campaign="p", message="【测试】{姓名}您好")
    api.send(settings, "p")

    progress = api.reconcile(settings, "p")

    assert (progress.still_pending, progress.delivered, progress.undelivered) == (10, 0, 0)
    assert api.status(settings, "p").by_state[SENT] == 10
