"""A whole campaign against an independent double of the provider, not our sandbox.

1,000 recipients over HTTPS on an underscore host name (a ``*.zhenzi.test`` certificate from a
test CA, trusted through ``--ca-bundle``), with connections reset before the request is read and
a reply shape drawn at random for every unknown messageId. The real CLI imports, sends and
reconciles; the double's own record says what the phones received.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter

from click.testing import CliRunner

from campaigns.cli import cli
from tests.support.real_double import (
    UNDERSCORE_HOST,
    UNKNOWN_SHAPES,
    Certificates,
    DoubleConfig,
    RealDouble,
    Sms,
    resolve_test_hosts,
)
from tests.support.recipients import valid_phones, write_csv

RECIPIENTS = 1000


def status_of(sms: Sms) -> str:
    """Fixed per number: mostly "success", some failed, a few with a text nobody mapped."""
    bucket = zlib.crc32(sms.number.encode()) % 20
    return "fail" if bucket == 0 else "未知状态" if bucket == 1 else "success"


def test_a_thousand_recipients_each_get_exactly_one_sms(tmp_path, monkeypatch):
    resolve_test_hosts(monkeypatch)
    certs = Certificates(tmp_path)
    config = DoubleConfig(balance=50_000, reset_share=0.03, status_of=status_of, seed=5)
    phones = valid_phones(RECIPIENTS)
    path = write_csv(tmp_path / "list.csv", phones)
    runner = CliRunner()
    with RealDouble(config, certs.server_context("*.zhenzi.test")) as double:
        base = [
            "--db", f"sqlite:///{tmp_path / 'c.db'}",
            "--api-url", double.url(UNDERSCORE_HOST),
            "--app-id", config.app_id,
            "--ca-bundle", certs.bundle,
            "--lookup-wait", "0.05",
            "--quiet",
        ]  # fmt: skip
        env = {"ZHENZI_APP_SECRET": config.app_secret}

        def run(*args: str):
            result = runner.invoke(cli, [*base, *args], env=env, catch_exceptions=False)
            assert result.exit_code == 0, result.output
            return result

        run("import", str(path), "--campaign", "real", "--message", "【测试】{姓名}您好,订单已发货")
        run("send", "real", "--concurrency", "8")
        run("reconcile", "real")
        by_state = json.loads(run("status", "real", "--json").stdout)["by_state"]

    received = Counter(sms.number for sms in double.ledger)
    assert set(received) == set(phones)
    assert set(received.values()) == {1}, "someone got two SMS"
    said = Counter(status_of(sms) for sms in double.ledger)
    assert by_state["delivered"] == said["success"] == double.delivered()
    assert by_state["undelivered"] == said["fail"]
    assert by_state["sent"] == said["未知状态"]  # not final: kept for a later look
    # The faults really happened: resets, and lookups of ids the double never accepted.
    assert double.resets > 0
    assert set(double.unknown_shapes) <= set(UNKNOWN_SHAPES)
    assert len(set(double.unknown_shapes)) >= 2
