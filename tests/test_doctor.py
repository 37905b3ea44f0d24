"""`campaigns doctor` against the sandbox (real shapes) and an HTTPS double: one SMS, never more."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from campaigns.cli import cli
from campaigns.doctor import recommended_lookup_wait
from tests.support.real_double import (
    UNDERSCORE_HOST,
    Certificates,
    DoubleConfig,
    RealDouble,
    resolve_test_hosts,
)
from tests.support.recipients import APP_ID, APP_SECRET

NUMBER = "13800138000"


def doctor(url: str, *args: str, secret: str = APP_SECRET, app_id: str = APP_ID, env=None):
    base = ["--api-url", url, "--app-id", app_id, "--lookup-wait", "3"]
    environment = {"ZHENZI_APP_SECRET": secret, **(env or {})}
    return CliRunner().invoke(cli, [*base, "doctor", *args], env=environment)


@pytest.fixture
def real_sandbox(sandbox):
    sandbox.config.shape = "real"
    sandbox.config.visibility_delay_s = 0.7
    sandbox.config.delivery_delay_s = 0.3
    sandbox.config.undelivered_share = 0.0
    return sandbox


def test_measures_visibility_with_exactly_one_sms(real_sandbox, tmp_path):
    saved = tmp_path / "doctor.json"
    args = ["--test-number", NUMBER, "--watch", "2", "--json", "--save", str(saved)]
    result = doctor(real_sandbox.url, *args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [e["number"] for e in real_sandbox.ledger_entries()] == [NUMBER]
    assert isinstance(report["balance"], int) and isinstance(report["tls"], dict)
    # Lookups every 0.5 s: the first one to find it is at most one step past the real delay.
    assert 0.7 <= report["visibility_delay_s"] <= 0.7 + 0.5 + 1.0
    assert report["recommended_lookup_wait_s"] >= report["visibility_delay_s"] + 1.0
    assert report["status_changes"][-1]["status"] == "success"
    text = saved.read_text(encoding="utf-8")
    assert APP_SECRET not in text and APP_ID not in text
    paths = [exchange["path"] for exchange in json.loads(text)["exchanges"]]
    assert paths.count("/sms/send.do") == 1 and "/account/balance.do" in paths


def test_plain_words_recommend_settings(real_sandbox):
    result = doctor(real_sandbox.url, "--test-number", NUMBER, "--watch", "1")
    assert result.exit_code == 0, result.output
    assert "credentials: accepted" in result.output
    assert "--lookup-wait" in result.output and "measured" in result.output
    assert "--insecure-tls is not needed" in result.output
    assert len(real_sandbox.ledger_entries()) == 1


def test_a_lost_reply_is_looked_up_never_sent_again(real_sandbox):
    real_sandbox.config.drop_after_accept = 1.0
    result = doctor(real_sandbox.url, "--test-number", NUMBER, "--watch", "1.5", "--json")
    report = json.loads(result.stdout)
    assert len(real_sandbox.ledger_entries()) == 1
    assert report["visibility_delay_s"] is not None
    assert result.exit_code == 2  # the lost reply is reported as a problem


def test_wrong_secret_fails_at_the_balance_and_sends_nothing(real_sandbox):
    result = doctor(real_sandbox.url, "--test-number", NUMBER, "--json", secret="wrong-one")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["balance"] is None and "110" in report["problems"][0]
    assert real_sandbox.ledger_entries() == []


def test_without_a_test_number_the_current_lookup_wait_stands():
    assert recommended_lookup_wait(None, 3.0) == 3.0
    assert recommended_lookup_wait(2.0, 3.0) == 4.0


@pytest.fixture
def https_double(tmp_path, monkeypatch):
    resolve_test_hosts(monkeypatch)
    certs = Certificates(tmp_path)
    config = DoubleConfig(app_id=APP_ID, app_secret=APP_SECRET)
    with RealDouble(config, certs.server_context("*.zhenzi.test")) as double:
        yield double, certs


def test_reports_the_certificate_of_the_underscore_host(https_double):
    double, certs = https_double
    url = double.url(UNDERSCORE_HOST)
    result = doctor(url, "--json", env={"ZHENZI_CA_BUNDLE": certs.bundle})
    assert result.exit_code == 0, result.output
    tls = json.loads(result.stdout)["tls"]
    assert tls["verified"] and tls["names"] == ["*.zhenzi.test"] and tls["expires"]


def test_says_when_insecure_tls_would_be_needed(https_double):
    double, _ = https_double
    url = double.url(UNDERSCORE_HOST)
    refused = doctor(url, "--json")  # the default store does not know the test CA
    report = json.loads(refused.stdout)
    assert refused.exit_code == 2
    assert report["insecure_tls_needed"] and "unknown CA" in report["tls"]["problem"]
    assert report["balance"] is None and double.bodies == []
    allowed = doctor(url, "--json", env={"ZHENZI_INSECURE_TLS": "1"})
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)["insecure_tls_needed"] is True
