"""Interrupted sends, in a real `campaigns send` process: resume sends the rest, nobody twice."""

from __future__ import annotations

import signal

import pytest

from tests.support.processes import start_send, wait_for_ledger
from tests.support.recipients import ledger_counts, status_json, valid_phones, write_csv

COUNT = 150


@pytest.fixture
def campaign(run, sandbox, tmp_path):
    sandbox.config.latency_ms = 30
    path = write_csv(tmp_path / "list.csv", valid_phones(COUNT))
    assert run("import", str(path), "-c", "spring", "-m", "【测试】{姓名}您好").exit_code == 0


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_interrupted_send_resumes_and_sends_each_once(campaign, run, sandbox, db_url, sig):
    process = start_send(sandbox, db_url, "--rate", "20")  # 7 s of work: room to interrupt
    wait_for_ledger(sandbox, 20, process)
    process.send_signal(sig)
    output, _ = process.communicate(timeout=30)
    interrupted_at = len(sandbox.ledger_entries())
    assert interrupted_at < COUNT, "the send finished before it could be interrupted"
    if sig != signal.SIGKILL:
        assert process.returncode == 130, output
        assert "stopped; run `campaigns send spring` to resume" in output
        assert "Traceback" not in output
        # A graceful stop finishes and records its in-flight requests: nothing left `sending`.
        assert status_json(run, "spring")["by_state"]["sending"] == 0

    resumed = run("send", "spring")
    assert resumed.exit_code == 0, resumed.output
    counts = ledger_counts(sandbox)
    assert len(counts) == COUNT
    assert max(counts.values()) == 1
    by_state = status_json(run, "spring")["by_state"]
    assert by_state["sent"] == COUNT
    assert by_state["sending"] == by_state["pending"] == 0


def test_two_senders_started_together_share_the_work_and_never_a_message(
    campaign, run, sandbox, db_url
):
    senders = [start_send(sandbox, db_url) for _ in range(2)]
    outputs = [sender.communicate(timeout=60)[0] for sender in senders]
    assert [sender.returncode for sender in senders] == [0, 0], outputs
    counts = ledger_counts(sandbox)
    assert len(counts) == COUNT and max(counts.values()) == 1
    # Both did part of it: "sent N" from each adds up to the campaign.
    sent = [int(output.split("sent ")[1].split(",")[0]) for output in outputs]
    assert sum(sent) == COUNT and min(sent) > 0, outputs


def test_status_and_report_read_consistent_counts_while_send_writes(
    campaign, run, sandbox, db_url, tmp_path
):
    sender = start_send(sandbox, db_url, "--rate", "60")
    try:
        wait_for_ledger(sandbox, 5, sender)
        seen = []
        while sender.poll() is None and len(seen) < 15:
            status = status_json(run, "spring")
            assert sum(status["by_state"].values()) == status["total"] == COUNT
            seen.append(status["by_state"]["sent"])
            report = run("report", "spring", "--output", str(tmp_path / "live.csv"))
            assert report.exit_code == 0, report.output
        assert seen == sorted(seen), "sent counts must only grow"
        assert len(set(seen)) > 1, "status saw the send make progress"
    finally:
        sender.send_signal(signal.SIGINT)
        sender.communicate(timeout=30)
