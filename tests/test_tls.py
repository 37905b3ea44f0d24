"""TLS on the provider's hosts, against a real HTTPS server with certificates from a test CA.

The personal host has an underscore; here ``sms_developer.zhenzi.test`` resolves to 127.0.0.1
inside the test process, served a ``*.zhenzi.test`` certificate. On every refusal the server
must have read no request body: the appSecret never left.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from click.testing import CliRunner

from campaigns.cli import cli
from campaigns.config import Secret
from campaigns.errors import AccountBlocked, TlsError, Transient, UserError
from campaigns.provider.client import ZhenziClient
from campaigns.provider.sandbox import Sandbox, SandboxConfig
from campaigns.provider.tls import name_matches
from tests.support.real_double import (
    UNDERSCORE_HOST,
    Certificates,
    DoubleConfig,
    RealDouble,
    resolve_test_hosts,
)

CONFIG = DoubleConfig()


def san(*names: str) -> dict:
    return {"subjectAltName": tuple(("DNS", n) for n in names)}


@pytest.mark.parametrize(
    ("names", "host", "matches"),
    [
        (["*.zhenzikj.com"], "sms_developer.zhenzikj.com", True),  # the one relaxation
        (["*.zhenzikj.com"], "sms.zhenzikj.com", True),
        (["*.zhenzikj.com"], "SMS.ZhenziKJ.com.", True),
        (["*.zhenzikj.com"], "a.sms_developer.zhenzikj.com", False),  # one label only
        (["*.zhenzikj.com"], "zhenzikj.com", False),
        (["*.zhenzikj.com"], "sms_developer.zhenzikj.com.evil.test", False),
        (["sms.*.com"], "sms.zhenzikj.com", False),  # leftmost label only
        (["s*.zhenzikj.com"], "sms.zhenzikj.com", False),  # no partial wildcards
        (["*.com"], "zhenzikj.com", False),  # not over a public suffix-like level
        (["*.zhenzikj.com"], "xn--fsq.zhenzikj.com", False),  # never over an IDNA label
        (["sms_developer.zhenzikj.com"], "sms_developer.zhenzikj.com", True),
        (["sms.zhenzikj.com"], "sms_developer.zhenzikj.com", False),  # exact otherwise
        (["*.zhenzikj.com"], "127.0.0.1", False),
        ([], "sms.zhenzikj.com", False),
    ],
)
def test_host_name_rules(names, host, matches):
    assert name_matches(san(*names), host) is matches


def test_ip_hosts_match_ip_entries_only():
    cert = {"subjectAltName": (("IP Address", "127.0.0.1"), ("DNS", "127.0.0.1"))}
    assert name_matches(cert, "127.0.0.1")
    assert not name_matches(cert, "127.0.0.2")
    assert not name_matches({"subjectAltName": (("DNS", "127.0.0.1"),)}, "127.0.0.1")


@pytest.fixture
def certs(tmp_path) -> Certificates:
    return Certificates(tmp_path)


@pytest.fixture
def underscore_host(monkeypatch):
    resolve_test_hosts(monkeypatch)
    return UNDERSCORE_HOST


def client(url: str, bundle: str | None, **options) -> ZhenziClient:
    return ZhenziClient(
        url, CONFIG.app_id, Secret(CONFIG.app_secret), ca_bundle=bundle, max_attempts=1, **options
    )


def test_wildcard_certificate_covers_the_underscore_host(certs, underscore_host):
    with RealDouble(CONFIG, certs.server_context(f"*.{'zhenzi.test'}")) as double:
        url = double.url(underscore_host)
        # What the SDKs ran into: Python's usual check refuses this host...
        with pytest.raises(requests.exceptions.SSLError, match="match"):
            requests.post(url + "/account/balance.do", verify=certs.bundle, timeout=5)
        assert double.bodies == []
        # ... ours verifies the chain and accepts the wildcard over the `_` label.
        assert client(url, certs.bundle).balance() == CONFIG.balance
        assert len(double.bodies) == 1


@pytest.mark.parametrize(
    ("served", "trusted", "kind", "words"),
    [
        ({"names": ("*.zhenzi.test",)}, "other CA", "unknown CA", "unknown CA"),
        ({"names": ("*.other.test",)}, "our CA", "name", "*.other.test"),
        ({"names": ("*.zhenzi.test",), "expired": True}, "our CA", "expired", "expired"),
    ],
)
def test_refusals_name_host_and_reason_and_send_nothing(
    certs, underscore_host, tmp_path, served, trusted, kind, words
):
    other = Certificates(tmp_path / "other")
    (tmp_path / "other").mkdir()
    bundle = certs.bundle if trusted == "our CA" else other.bundle
    context = certs.server_context(*served["names"], expired=served.get("expired", False))
    with RealDouble(CONFIG, context) as double:
        sms = client(double.url(underscore_host), bundle)
        with pytest.raises(TlsError) as caught:
            sms.send("13800138000", "【测试】内容", "tls-1")
        assert double.bodies == []  # nothing, not even the credentials, was written
    assert caught.value.kind == kind
    message = str(caught.value)
    assert underscore_host in message and words in message
    assert "provider code" not in message
    assert "\n" not in message


def test_cli_trusts_ca_bundle_and_refusal_is_one_line(certs, underscore_host, tmp_path):
    with RealDouble(CONFIG, certs.server_context("*.zhenzi.test")) as double:
        base = ["--api-url", double.url(underscore_host), "--app-id", CONFIG.app_id]
        env = {"ZHENZI_APP_SECRET": CONFIG.app_secret}
        runner = CliRunner()
        ok = runner.invoke(cli, [*base, "--ca-bundle", certs.bundle, "balance"], env=env)
        assert ok.exit_code == 0, ok.output
        assert f"balance: {CONFIG.balance} SMS" in ok.output
        by_env = runner.invoke(
            cli, [*base, "balance"], env={**env, "ZHENZI_CA_BUNDLE": certs.bundle}
        )
        assert by_env.exit_code == 0, by_env.output
        # The default store does not know the test CA: one line, not an account block.
        refused = runner.invoke(cli, [*base, "balance"], env=env)
        assert double.bodies and len(double.bodies) == 2
    assert refused.exit_code == 1
    assert refused.output.count("\n") == 1
    assert f"TLS check failed for {underscore_host}: unknown CA" in refused.output
    assert "--ca-bundle" in refused.output
    assert "Traceback" not in refused.output


def test_insecure_tls_works_warns_and_is_recorded(certs, underscore_host, tmp_path, caplog):
    other = Certificates(tmp_path / "other")
    (tmp_path / "other").mkdir()
    path = tmp_path / "list.csv"
    path.write_text("手机号\n13800138000\n", encoding="utf-8")
    db = ["--db", f"sqlite:///{tmp_path / 'c.db'}"]
    with RealDouble(CONFIG, certs.server_context("*.zhenzi.test")) as double:
        base = [*db, "--api-url", double.url(underscore_host), "--app-id", CONFIG.app_id]
        env = {"ZHENZI_APP_SECRET": CONFIG.app_secret, "ZHENZI_CA_BUNDLE": other.bundle}
        runner = CliRunner()
        imported = runner.invoke(
            cli,
            [*db, "import", str(path), "--campaign", "c", "--message", "【测试】您好,订单已发货"],
        )
        assert imported.exit_code == 0, imported.output
        with caplog.at_level(logging.WARNING, logger="campaigns"):
            result = runner.invoke(
                cli, [*base, "reconcile", "c"], env={**env, "ZHENZI_INSECURE_TLS": "1"}
            )
        assert result.exit_code == 0, result.output
        assert "--insecure-tls" in caplog.text and "NOT checked" in caplog.text
        status = runner.invoke(cli, [*db, "status", "c"])
    assert "ran with --insecure-tls" in status.output


class _OneReply(BaseHTTPRequestHandler):
    """Answers every request with the server's canned reply; counts the requests it gets."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.server.hits += 1  # type: ignore[attr-defined]
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, headers, body = self.server.reply  # type: ignore[attr-defined]
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        """Silent."""


@pytest.fixture
def canned():
    servers = []

    def serve(status: int, headers=(), body: bytes = b"") -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _OneReply)
        server.reply, server.hits = (status, headers, body), 0  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_redirect_is_not_followed_and_names_location(canned):
    elsewhere = canned(200, body=b'{"code":0,"data":1}')
    target = f"http://127.0.0.1:{elsewhere.server_address[1]}/steal"
    redirecting = canned(307, headers=[("Location", target)])
    sms = client(f"http://127.0.0.1:{redirecting.server_address[1]}", None)
    with pytest.raises(AccountBlocked) as caught:
        sms.balance()
    assert target in str(caught.value)
    assert elsewhere.hits == 0  # the appSecret went nowhere else


def test_a_garbled_reply_is_transient_and_maybe_sent(canned):
    garbled = canned(200, headers=[("Content-Encoding", "gzip")], body=b"not gzip at all")
    sms = client(f"http://127.0.0.1:{garbled.server_address[1]}", None)
    with pytest.raises(Transient) as caught:
        sms.balance()
    assert caught.value.maybe_sent


@pytest.mark.parametrize("url", ["notaurl", "ftp://sms.zhenzikj.com", "http://", "http://[::1"])
def test_unusable_urls_are_one_line_user_errors(url):
    with pytest.raises(UserError):
        client(url, None)
    result = CliRunner().invoke(
        cli, ["--api-url", url, "--app-id", "a", "--app-secret", "b", "balance"]
    )
    assert result.exit_code == 1
    assert result.output.startswith("error: --api-url")
    assert result.output.count("\n") == 1


def test_clear_text_to_a_remote_host_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="campaigns"):
        client("http://127.0.0.1:9", None)
        assert caplog.text == ""
        client("http://sms.zhenzikj.com", None)
    assert "clear text" in caplog.text


class _ConnectProxy(BaseHTTPRequestHandler):
    """A CONNECT-only proxy: opens the tunnel (test names resolve to loopback) and pipes bytes."""

    def do_CONNECT(self) -> None:
        host, port = self.path.rsplit(":", 1)
        self.server.tunnels.append(host)  # type: ignore[attr-defined]
        upstream = socket.create_connection(("127.0.0.1", int(port)))
        self.send_response(200)
        self.end_headers()
        sockets = [self.connection, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 5)
            if not readable:
                break
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    upstream.close()
                    return
                (upstream if sock is self.connection else self.connection).sendall(data)
        upstream.close()

    def log_message(self, *args) -> None:
        """Silent."""


@pytest.mark.parametrize(("served", "refused"), [("*.zhenzi.test", False), ("*.other.test", True)])
def test_the_name_check_holds_through_a_proxy_tunnel(
    certs, underscore_host, monkeypatch, served, refused
):
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _ConnectProxy)
    proxy.tunnels = []  # type: ignore[attr-defined]
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    try:
        with RealDouble(CONFIG, certs.server_context(served)) as double:
            sms = client(double.url(underscore_host), certs.bundle)
            if refused:
                with pytest.raises(TlsError, match="name mismatch"):
                    sms.balance()
                assert double.bodies == []
            else:
                assert sms.balance() == CONFIG.balance
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert proxy.tunnels == [underscore_host]  # the request really went through the proxy


def test_a_socks_proxy_is_refused_in_one_line(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:9")
    # Refused by requests itself without PySocks, by us with it: never a request that checks
    # no name.
    with pytest.raises(UserError, match="SOCKS|only http:// and https:// proxies"):
        client("https://sms.zhenzikj.com", None).balance()


def test_a_send_refused_by_tls_sends_nothing_and_is_no_account_block(
    certs, underscore_host, tmp_path
):
    path = tmp_path / "list.csv"
    path.write_text("手机号\n13800138000\n13800138001\n", encoding="utf-8")
    db = ["--db", f"sqlite:///{tmp_path / 'c.db'}"]
    runner = CliRunner()
    message = "【测试】您好,订单已发货"
    assert runner.invoke(cli, [*db, "import", str(path), "-c", "c", "-m", message]).exit_code == 0
    with RealDouble(CONFIG, certs.server_context("*.other.test")) as double:
        base = [*db, "--api-url", double.url(underscore_host), "--app-id", CONFIG.app_id]
        env = {"ZHENZI_APP_SECRET": CONFIG.app_secret, "ZHENZI_CA_BUNDLE": certs.bundle}
        sent = runner.invoke(cli, [*base, "send", "c"], env=env)
        status = runner.invoke(cli, [*db, "status", "c", "--json"])
    assert double.bodies == [] and double.ledger == []
    assert sent.exit_code == 1, sent.output
    assert "name mismatch" in sent.output and "provider code" not in sent.output
    assert json.loads(status.stdout)["by_state"]["pending"] == 2


def test_our_sandbox_over_https_in_real_shape(certs):
    chain, key = certs.server_files("127.0.0.1")
    config = SandboxConfig(
        app_id=CONFIG.app_id,
        app_secret=CONFIG.app_secret,
        tls_cert=chain,
        tls_key=key,
        shape="real",
        delivery_delay_s=0.0,
        undelivered_share=0.0,
    )
    with Sandbox(config) as sandbox:
        assert sandbox.url.startswith("https://127.0.0.1:")
        sms = client(sandbox.url, certs.bundle)
        sms.send("13800138000", "【测试】内容", "https-1")
        assert sms.find("https-1").delivery == "delivered"
        assert sms.find("never-sent") is None
    assert [entry["messageId"] for entry in sandbox.ledger_entries()] == ["https-1"]
