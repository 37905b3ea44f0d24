"""The sandbox serves HTTPS with a certificate from a test CA (``trustme``), in-process and from
the CLI; clients that refuse the certificate or do not speak TLS leave it serving."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from campaigns.provider.sandbox import Sandbox, SandboxConfig
from tests.support.sandbox import TlsFiles, sandbox_command, wait_for, write_tls_files

FORM = {"appId": "demo-app", "appSecret": "demo-secret"}
BALANCE = "/account/balance.do"
SEND = "/sms/send.do"
FIND = "/smslog/findSmsByMessageId.do"
FORM_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"


@pytest.fixture
def pem_files(tmp_path: Path) -> TlsFiles:
    return write_tls_files(tmp_path)


@pytest.fixture
def tls_sandbox(pem_files: TlsFiles) -> Iterator[Sandbox]:
    config = SandboxConfig(tls_cert=str(pem_files.chain), tls_key=str(pem_files.key))
    with Sandbox(config) as sb:
        yield sb


def test_serves_https_verified_against_the_test_ca(
    tls_sandbox: Sandbox, pem_files: TlsFiles
) -> None:
    assert tls_sandbox.url == f"https://127.0.0.1:{tls_sandbox.port}"
    verify = str(pem_files.ca)
    with requests.Session() as session:
        balance = session.post(tls_sandbox.url + BALANCE, data=FORM, verify=verify, timeout=5)
        sent = session.post(
            tls_sandbox.url + SEND,
            data={**FORM, "number": "13812345678", "message": "【测】取件", "messageId": "t-1"},
            verify=verify,
            timeout=5,
        )
        found = session.post(
            tls_sandbox.url + FIND, data={**FORM, "messageId": "t-1"}, verify=verify, timeout=5
        )
    assert balance.json() == {"code": 0, "data": 1_000_000}
    assert sent.content == '{"code":0,"data":"发送成功"}'.encode()
    assert found.json()["code"] == 0
    assert [entry["messageId"] for entry in tls_sandbox.ledger_entries()] == ["t-1"]


def test_key_inside_the_certificate_file(pem_files: TlsFiles) -> None:
    with Sandbox(SandboxConfig(tls_cert=str(pem_files.combined))) as sb:
        reply = requests.post(sb.url + BALANCE, data=FORM, verify=str(pem_files.ca), timeout=5)
    assert reply.json()["code"] == 0


def test_refused_handshakes_and_plain_http_leave_it_serving(
    tls_sandbox: Sandbox, pem_files: TlsFiles, capfd: pytest.CaptureFixture[str]
) -> None:
    address = ("127.0.0.1", tls_sandbox.port)
    with socket.create_connection(address, timeout=5) as raw, pytest.raises(ssl.SSLError):
        ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")  # no test CA
    with pytest.raises(requests.ConnectionError):
        requests.post(tls_sandbox.url.replace("https", "http") + BALANCE, data=FORM, timeout=5)
    with socket.create_connection(address, timeout=5):
        pass  # connects and hangs up before the handshake
    trusting = ssl.create_default_context(cafile=str(pem_files.ca))
    conn = http.client.HTTPSConnection(*address, timeout=5, context=trusting)
    conn.request("POST", BALANCE, urlencode(FORM), {"Content-Type": FORM_TYPE})
    assert json.loads(conn.getresponse().read())["code"] == 0
    conn.close()  # requests would keep its socket open as long as the reply object lives
    assert tls_sandbox.request_count(BALANCE) == 1  # nothing else got past the handshake
    wait_for(lambda: tls_sandbox.open_connections() == 0)
    assert capfd.readouterr().err == ""


def test_unloadable_certificate_is_a_one_line_value_error(
    pem_files: TlsFiles, tmp_path: Path
) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello", encoding="utf-8")
    with pytest.raises(ValueError, match=r"cannot load a TLS certificate and key from .*not\.pem"):
        Sandbox(SandboxConfig(tls_cert=str(not_pem))).start()
    with pytest.raises(ValueError, match="needs its certificate"):
        Sandbox(SandboxConfig(tls_key=str(pem_files.key))).start()


def test_cli_serves_https_and_prints_an_https_url(pem_files: TlsFiles) -> None:
    server = sandbox_command("--tls-cert", str(pem_files.chain), "--tls-key", str(pem_files.key))
    try:
        url = server.stdout.readline().strip() if server.stdout else ""
        assert url.startswith("https://127.0.0.1:")
        reply = requests.post(url + BALANCE, data=FORM, verify=str(pem_files.ca), timeout=5)
        assert reply.content == b'{"code":0,"data":1000000}'
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=10)
    assert (server.returncode, err) == (0, "")


def test_cli_bad_certificate_is_one_line(tmp_path: Path) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello", encoding="utf-8")
    server = sandbox_command("--tls-cert", str(not_pem))
    out, err = server.communicate(timeout=30)
    assert server.returncode == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "cannot load a TLS certificate and key from" in err and "not.pem" in err
    assert "Traceback" not in err
