"""`campaigns doctor`: check the account end to end and measure what no document says.

In order: resolve the host; complete a TLS handshake and read the certificate; ask the balance
(which checks the credentials); and, given a test number, send ONE SMS and look it up every
0.5 s until it shows (the visibility delay that ``--lookup-wait`` must cover), then keep
looking for ``watch`` seconds to record how its status changes. The send makes a single
attempt: a doctor that retried could send twice while measuring the very delay that decides
whether a retry is safe.
"""

from __future__ import annotations

import json
import math
import secrets
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from campaigns.config import Settings
from campaigns.errors import CampaignsError, ProviderError, Transient
from campaigns.provider.client import SmsRecord, ZhenziClient, delivery_of
from campaigns.provider.tls import (
    NameMismatch,
    certificate_names,
    describe_certificate,
    make_context,
    name_matches,
    tls_failure,
)

DEFAULT_TEXT = "【测试】这是一条测试短信,无需回复。This is a test message, no reply needed."
POLL_UNTIL_VISIBLE = 0.5
POLL_AFTER = 2.0
# How long to wait for the test SMS to show at all before calling it invisible.
VISIBILITY_LIMIT = 120.0
# The recommended --lookup-wait: the measured delay, half as much again, and one second more,
# rounded up to half a second. A delay measured once on a quiet moment is a floor, not a bound.
MARGIN_FACTOR = 1.5
MARGIN_S = 1.0
REDACTED = "<redacted>"
# What reconcile makes of a status text (see DELIVERED_TEXTS / UNDELIVERED_TEXTS in the client).
_MEANS = {
    "delivered": "delivered",
    "undelivered": "undelivered",
    None: "not final: a text reconcile does not know",
}


@dataclass
class DoctorReport:
    api_url: str
    host: str
    addresses: list[str] = field(default_factory=list)
    tls: dict[str, Any] = field(default_factory=dict)
    balance: int | None = None
    test_message_id: str | None = None
    visibility_delay_s: float | None = None
    status_changes: list[tuple[float, str]] = field(default_factory=list)
    reply_times_s: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    recommended_lookup_wait_s: float = 0.0
    insecure_tls_needed: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "api_url": self.api_url,
            "host": self.host,
            "addresses": self.addresses,
            "tls": self.tls,
            "balance": self.balance,
            "test_message_id": self.test_message_id,
            "visibility_delay_s": self.visibility_delay_s,
            "status_changes": [
                {"after_s": t, "status": s, "means": _MEANS[delivery_of(s)]}
                for t, s in self.status_changes
            ],
            "reply_times_s": self.reply_times_s,
            "recommended_lookup_wait_s": self.recommended_lookup_wait_s,
            "insecure_tls_needed": self.insecure_tls_needed,
            "problems": self.problems,
        }


class Exchanges:
    """Every request path and raw reply, credentials redacted, for ``--save``."""

    def __init__(self, settings: Settings) -> None:
        self._secrets = [s for s in (settings.app_secret.reveal(), settings.app_id) if s]
        self.items: list[dict[str, Any]] = []

    def record(self, path: str, fields: dict[str, str], status: int, reply: str) -> None:
        for secret in self._secrets:  # a provider that echoed a credential: not in the file
            reply = reply.replace(secret, REDACTED)
        form = {"appId": REDACTED, "appSecret": REDACTED, **fields}
        self.items.append({"path": path, "form": form, "http_status": status, "reply": reply})

    def save(self, path: Path, report: DoctorReport) -> None:
        document = {"report": report.as_dict(), "exchanges": self.items}
        path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", "utf-8")


def recommended_lookup_wait(measured: float | None, current: float) -> float:
    """At least the measured delay plus a margin; unmeasured, the current setting stands."""
    if measured is None:
        return current
    return math.ceil((measured * MARGIN_FACTOR + MARGIN_S) * 2) / 2


def _port(parts) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def resolve(report: DoctorReport, port: int) -> bool:
    try:
        infos = socket.getaddrinfo(report.host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        report.problems.append(f"cannot resolve {report.host}: {exc.strerror or exc}")
        return False
    report.addresses = sorted({str(info[4][0]) for info in infos})
    return True


def _handshake(host: str, port: int, context: ssl.SSLContext, timeout: float) -> dict[str, Any]:
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return tls.getpeercert() or {}


def check_tls(report: DoctorReport, settings: Settings, port: int) -> bool:
    """Verified handshake first; if it fails, whether the handshake works unverified."""
    timeout = settings.connect_timeout
    try:
        cert = _handshake(report.host, port, make_context(settings.ca_bundle, False), timeout)
        if not name_matches(cert, report.host):
            raise NameMismatch(report.host, certificate_names(cert))
    except (ssl.SSLError, ValueError) as exc:
        failure = str(tls_failure(exc, report.host) or f"the TLS connection was cut ({exc})")
        report.tls = {"used": True, "verified": False, "problem": failure}
        try:
            _handshake(report.host, port, make_context(None, insecure=True), timeout)
        except OSError:
            report.problems.append(failure)
            return False
        report.insecure_tls_needed = True
        if not settings.insecure_tls:
            report.problems.append(failure)
        return settings.insecure_tls
    except OSError as exc:
        report.problems.append(f"cannot connect to {report.host}:{port}: {exc.strerror or exc}")
        return False
    report.tls = {"used": True, "verified": True, **describe_certificate(cert)}
    return True


def _timed(report: DoctorReport, name: str, call: Callable[[], Any]) -> Any:
    """``call()``, keeping the slowest time each kind of call took."""
    started = time.monotonic()
    try:
        return call()
    finally:
        took = round(time.monotonic() - started, 3)
        report.reply_times_s[name] = max(took, report.reply_times_s.get(name, 0.0))


def watch_test_sms(
    report: DoctorReport,
    client: ZhenziClient,
    number: str,
    message: str,
    watch: float,
    sleep: Callable[[float], None],
) -> None:
    """One send, one attempt; then lookups until it shows and for ``watch`` seconds more."""
    message_id = f"doctor-{secrets.token_hex(6)}"
    report.test_message_id = message_id
    attempts, client.max_attempts = client.max_attempts, 1
    started = time.monotonic()
    try:
        _timed(report, "send", lambda: client.send(number, message, message_id))
    except Transient as exc:
        report.problems.append(f"the send's outcome is unknown ({exc}); looking it up")
    except ProviderError as exc:
        report.problems.append(f"the test SMS was refused: {exc}")
        return
    finally:
        client.max_attempts = attempts
    _watch(report, client, message_id, started, watch, sleep)


def _watch(
    report: DoctorReport,
    client: ZhenziClient,
    message_id: str,
    started: float,
    watch: float,
    sleep: Callable[[float], None],
) -> None:
    """Every 0.5 s until the SMS shows (for at most VISIBILITY_LIMIT), then every 2 s for
    ``watch`` seconds, noting each status it passes through."""
    last_status: str | None = None
    while True:
        elapsed = time.monotonic() - started
        visible = report.visibility_delay_s
        if elapsed >= (VISIBILITY_LIMIT if visible is None else visible + watch):
            break
        record: SmsRecord | None = _timed(report, "lookup", lambda: client.find(message_id))
        elapsed = round(time.monotonic() - started, 2)
        if record is not None:
            if visible is None:
                report.visibility_delay_s = elapsed
            if record.status != last_status:
                report.status_changes.append((elapsed, record.status))
                last_status = record.status
        sleep(POLL_UNTIL_VISIBLE if record is None else POLL_AFTER)
    if report.visibility_delay_s is None:
        report.problems.append(
            f"the test SMS never showed in a lookup within {VISIBILITY_LIMIT:g} s: lookups "
            "cannot confirm a send whose reply was lost; ask the provider how long its log takes"
        )


def run_doctor(
    settings: Settings,
    client: ZhenziClient,
    *,
    test_number: str | None = None,
    message: str = DEFAULT_TEXT,
    watch: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> DoctorReport:
    """Each step in order; a step that fails ends the run (the next ones depend on it)."""
    parts = urlsplit(settings.api_url)
    report = DoctorReport(api_url=settings.api_url, host=client.host)
    report.recommended_lookup_wait_s = settings.lookup_wait
    if not resolve(report, _port(parts)):
        return report
    if parts.scheme == "https":
        if not check_tls(report, settings, _port(parts)):
            return report
    else:
        report.tls = {"used": False}
    try:
        report.balance = _timed(report, "balance", client.balance)
    except CampaignsError as exc:
        report.problems.append(f"balance failed: {exc}")
        return report
    if test_number:
        watch_test_sms(report, client, test_number, message, watch, sleep)
        report.recommended_lookup_wait_s = recommended_lookup_wait(
            report.visibility_delay_s, settings.lookup_wait
        )
    return report


def plain_words(report: DoctorReport, settings: Settings) -> list[str]:
    """What was found, and the settings to use, in sentences."""
    lines = [f"host {report.host}: resolves to {', '.join(report.addresses) or 'nothing'}"]
    tls = report.tls
    if tls.get("verified"):
        lines.append(
            f"TLS: certificate verified; names {', '.join(tls['names'])}; issuer "
            f"{tls['issuer']}; expires {tls['expires']}"
        )
    elif tls.get("used"):
        lines.append("TLS: the certificate did NOT pass the check (the problem is below)")
    elif tls:
        lines.append("TLS: not used (plain http): the appSecret travels in clear text")
    if report.balance is not None:
        lines.append(f"credentials: accepted; balance {report.balance} SMS")
    if report.visibility_delay_s is not None:
        changes = ", ".join(
            f"{s!r} ({_MEANS[delivery_of(s)]}) after {t:g} s" for t, s in report.status_changes
        )
        lines.append(
            f"test SMS {report.test_message_id}: visible to lookups "
            f"{report.visibility_delay_s:g} s after the send began; status: {changes}"
        )
    if report.reply_times_s:
        slowest = max(report.reply_times_s.values())
        lines.append(f"slowest reply {slowest:g} s (read timeout {settings.read_timeout:g} s)")
    lines.extend(f"problem: {problem}" for problem in report.problems)
    lines.append("recommended settings:")
    if report.visibility_delay_s is not None:
        lines.append(
            f"  --lookup-wait {report.recommended_lookup_wait_s:g}  (measured "
            f"{report.visibility_delay_s:g} s, plus a margin)"
        )
    else:
        lines.append(
            f"  --lookup-wait {settings.lookup_wait:g}  (the current value: nothing measured"
            + ("" if report.test_message_id else "; give --test-number to measure")
            + ")"
        )
    if report.insecure_tls_needed:
        lines.append(
            "  --insecure-tls is the only way past this certificate; prefer fixing the cause "
            "above (--ca-bundle when a corporate proxy re-signs TLS)"
        )
    elif settings.insecure_tls:
        lines.append("  --insecure-tls is NOT needed: the certificate verifies; drop it")
    else:
        lines.append("  --insecure-tls is not needed")
    return lines
