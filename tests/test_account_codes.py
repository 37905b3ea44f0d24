"""Every account code arriving mid-send stops the run; nothing is marked failed for it.

The codes are injected by a proxy in front of the sandbox once some messages have gone, so the
run is well under way, several requests in flight, when the provider turns the account down.
"""

from __future__ import annotations

import pytest

from campaigns import api
from campaigns.config import Settings
from campaigns.errors import SendStopped
from campaigns.provider.client import SEND_PATH
from campaigns.sending import SendOptions
from campaigns.store.models import FAILED, PENDING, SENDING, SENT
from tests.support.proxy import FaultProxy, provider_code
from tests.support.recipients import ledger_counts, valid_phones, write_csv

ALLOWED = 15  # sends the proxy lets through before the account code


@pytest.mark.parametrize("code", [105, 106, 107, 110, 111, 117])
def test_an_account_code_mid_send_stops_without_failing_anyone(settings, sandbox, tmp_path, code):
    path = write_csv(tmp_path / "list.csv", valid_phones(60))
    api.import_file(settings, path, campaign="acct", message="【测试】{姓名}您好")
    with FaultProxy(sandbox.url) as proxy:
        proxy.intercept = lambda where, seen: (
            provider_code(code) if where == SEND_PATH and seen >= ALLOWED else None
        )
        through_proxy = Settings(**{**settings.__dict__, "api_url": proxy.url})
        with pytest.raises(SendStopped) as stopped:
            api.send(through_proxy, "acct", SendOptions(concurrency=4))
    assert stopped.value.account is not None and stopped.value.account.code == code
    assert f"provider code {code}" in str(stopped.value)
    status = api.status(settings, "acct")
    assert status.by_state[FAILED] == 0
    assert status.by_state[SENDING] == 0
    assert status.by_state[SENT] == ALLOWED == len(ledger_counts(sandbox))
    assert status.by_state[PENDING] == 60 - ALLOWED
    assert str(code) in (status.stop_reason or "")

    resumed = api.send(settings, "acct", SendOptions(concurrency=4))
    assert resumed.sent == 60 - ALLOWED
    counts = ledger_counts(sandbox)
    assert len(counts) == 60 and max(counts.values()) == 1
