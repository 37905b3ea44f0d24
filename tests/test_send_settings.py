"""A campaign remembers how it is sent (issue 16 §1): resume, change, status, hints."""

from __future__ import annotations

import re
import signal
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from campaigns.cli import cli
from campaigns.provider.ratelimit import BURST
from campaigns.schedule import SHANGHAI
from campaigns.send_settings import SendSettings, merge
from tests.support.processes import start_send, wait_for_ledger
from tests.support.recipients import status_json, valid_phones, write_csv

MESSAGE = "【店】{姓名}您好,订单已发货"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=SHANGHAI)


@pytest.fixture
def spring(run, tmp_path):
    def make(count: int, *extra: str, name: str = "spring") -> None:
        path = write_csv(tmp_path / f"{name}.csv", valid_phones(count))
        result = run("import", str(path), "-c", name, "-m", MESSAGE, *extra)
        assert result.exit_code == 0, result.output

    return make


def test_given_options_replace_stored_ones_and_the_changes_are_listed() -> None:
    stored = SendSettings(rate=5, cap="2/24h", allow_partial=True)
    merged, changes = merge(stored, {"rate": "10", "window": "8:00-21:00", "cap": "none"}, NOW)
    assert merged == SendSettings(rate=10, window="08:00-21:00", allow_partial=True)
    assert changes == ["--rate 5 → 10", "--window none → 08:00-21:00", "--cap 2/24h → none"]
    assert merged.as_options() == "--rate 10 --window 08:00-21:00 --allow-partial"


def test_a_stored_start_time_that_has_passed_is_not_applied_again() -> None:
    stored = SendSettings(start_at="2026-12-01 09:00")
    merged, changes = merge(stored, {}, NOW)
    assert merged.start_at is None
    assert changes == ["--at 2026-12-01 09:00 has passed: not applied again"]
    later, _ = merge(None, {"start_at": "2026-12-01 13:30"}, NOW)
    assert later.start_at == "2026-12-01 13:30"


def test_a_mistyped_option_is_refused_before_anything_is_stored(run, spring) -> None:
    spring(3)
    result = run("send", "spring", "--rate", "fast")
    assert result.exit_code == 1
    assert "error: --rate 'fast': expected messages per second, e.g. 50" in result.output
    assert status_json(run, "spring")["send_settings"] is None


def test_send_stores_its_settings_resumes_with_them_and_says_what_changed(run, spring) -> None:
    spring(3)
    first = run("send", "spring", "--rate", "50", "--cap", "3/24h")
    assert first.exit_code == 0, first.output
    assert "send settings stored with the campaign: --rate 50 --cap 3/24h\n" in first.output
    assert re.search(r"sending: 3/3 failed 0, [\d,]+\.\d/s of 50/s asked\n", first.output)
    assert re.search(r"sent 3, failed 0, at [\d,]+\.\d/s \(asked 50/s\)\n", first.output)
    stored = status_json(run, "spring")["send_settings"]
    assert (stored["rate"], stored["cap"]) == (50, "3/24h")
    assert "send settings (stored): --rate 50 --cap 3/24h\n" in run("status", "spring").output

    again = run("send", "spring")
    assert "resuming with the stored send settings: --rate 50 --cap 3/24h\n" in again.output
    changed = run("send", "spring", "--rate", "20", "--no-allow-partial")
    assert "send settings changed: --rate 50 → 20; now --rate 20 --cap 3/24h\n" in changed.output


def test_every_resume_hint_is_quoted_for_a_shell_and_says_it_keeps_the_settings(
    run, spring
) -> None:
    spring(2, name="spring sale")
    assert run("send", "spring sale", "--rate", "50").exit_code == 0
    paused = run("pause", "spring sale").output
    assert "`campaigns send 'spring sale'` resumes it" in paused
    shown = run("status", "spring sale").output
    assert "to continue: campaigns send 'spring sale'" in shown


def test_send_help_gives_the_rate_default_and_describes_concurrency() -> None:
    shown = " ".join(CliRunner().invoke(cli, ["send", "--help"]).output.split())
    assert "Messages per second for the whole account [default: none, as fast as" in shown
    assert "--concurrency INTEGER RANGE The most requests in flight at once" in shown
    assert "[default: 320; 1<=x<=1000]" in shown


@pytest.mark.timeout(60)
def test_ctrl_c_then_send_name_resumes_at_the_stored_rate(run, spring, sandbox, db_url) -> None:
    """The hazard of issue 16: the printed hint must not resume at full speed."""
    rate = 5
    spring(30)
    sender = start_send(sandbox, db_url, "--rate", str(rate))
    try:
        wait_for_ledger(sandbox, 4, sender)
    finally:
        sender.send_signal(signal.SIGINT)
        output, _ = sender.communicate(timeout=30)
    assert sender.returncode == 130, output
    assert "error" not in output
    assert (
        "stopped; run `campaigns send spring` to resume (with the campaign's stored send "
        "settings)\n" in output
    )
    before = len(sandbox.ledger_entries())

    resumed = run("send", "spring")
    assert resumed.exit_code == 0, resumed.output
    assert "resuming with the stored send settings: --rate 5 --concurrency 2\n" in resumed.output
    times = [datetime.fromisoformat(entry["time"]) for entry in sandbox.ledger_entries()[before:]]
    assert len(times) + before == 30
    busiest = max(
        sum(1 for other in times if start <= other < start + timedelta(seconds=1))
        for start in times
    )
    assert busiest <= rate + BURST, f"{busiest} SMS in one second after the resume"


def test_a_refusal_at_the_start_is_kept_for_status_with_the_next_step(run, spring) -> None:
    spring(2)
    refused = run("send", "spring", secret="wrong-secret")
    assert refused.exit_code == 2, refused.output
    shown = run("status", "spring").output
    assert "last send stopped: provider code 110" in shown
    assert "to continue: campaigns send spring (it resumes with the stored send settings)" in shown


def test_a_balance_refusal_is_kept_for_status(run, spring, sandbox) -> None:
    spring(2)
    sandbox.set_balance(1)
    refused = run("send", "spring")
    assert refused.exit_code == 2, refused.output
    shown = run("status", "spring").output
    assert "last send stopped: the balance (1 SMS) cannot cover this campaign" in shown


def test_a_marketing_text_without_opt_out_is_refused_unless_acknowledged(run, spring) -> None:
    spring(2, "--marketing")
    warning = "warning: marketing message without an opt-out phrase (退订)"
    dry = run("send", "spring", "--dry-run")
    assert warning in dry.output and "would send with: defaults" in dry.output
    refused = run("send", "spring")
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines()[-1] == (
        "error: campaign 'spring' is marketing and its text has no opt-out (退订, e.g. 回T退订): "
        "carriers block such texts; import it again with one, or send it anyway with "
        "--without-opt-out"
    )
    sent = run("send", "spring", "--without-opt-out")
    assert sent.exit_code == 0, sent.output
    assert warning in sent.output
    assert warning in run("status", "spring").output
    assert any("退订" in w for w in status_json(run, "spring")["warnings"])


def test_send_marketing_checks_the_text_too(run, spring) -> None:
    spring(2)  # imported without --marketing
    refused = run("send", "spring", "--marketing")
    assert refused.exit_code == 1
    assert "--without-opt-out" in refused.output


def test_a_stop_outside_the_window_hints_a_resume_that_keeps_the_window(run, spring) -> None:
    spring(2)
    now = datetime.now(SHANGHAI)
    closed = f"{now + timedelta(hours=2):%H:00}-{now + timedelta(hours=3):%H:00}"
    stopped = run("send", "spring", "--window", closed, "--no-wait")
    assert stopped.exit_code == 2, stopped.output
    assert (
        "run `campaigns send spring` to resume (with the campaign's stored send settings)"
        in stopped.output
    )
    assert f"send settings (stored): --window {closed}\n" in run("status", "spring").output
    again = run("send", "spring", "--no-wait")  # as printed (and still outside the window)
    assert again.exit_code == 2
    assert f"resuming with the stored send settings: --window {closed}\n" in again.output


def test_a_dry_run_shows_the_settings_it_would_use_and_stores_nothing(run, spring) -> None:
    spring(2)
    assert run("send", "spring", "--rate", "7").exit_code == 0
    dry = run("send", "spring", "--dry-run", "--rate", "9", "--cap", "1/24h")
    assert "would send with: --rate 9 --cap 1/24h\n" in dry.output
    assert status_json(run, "spring")["send_settings"]["rate"] == 7


def test_a_marketing_text_with_opt_out_sends_without_being_asked(run, tmp_path) -> None:
    path = write_csv(tmp_path / "m.csv", valid_phones(2))
    text = "【店】{姓名}您好,新品上市,回T退订"
    assert run("import", str(path), "-c", "m", "-m", text, "--marketing").exit_code == 0
    sent = run("send", "m", "--marketing", "--window", "00:00-24:00")  # any time of day
    assert sent.exit_code == 0, sent.output
    assert "warning:" not in sent.output
