"""The Zhenzi HTTP API: four calls, typed replies, retries, and the lookup-before-resend rule.

Every call is a form-encoded POST carrying appId and appSecret; the reply is ``{"code", "data"}``.
Failures are sorted by what the caller must do (see ``campaigns.errors``). A send whose outcome
is unknown (read timeout, dropped connection, 5xx, garbage reply, code 1000) is never repeated
blindly: the client waits out the provider's visibility window, looks the messageId up, and sends
again only when the provider does not know it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import requests
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from urllib3.exceptions import NewConnectionError

from campaigns.config import Secret
from campaigns.errors import AccountBlocked, MessageRejected, ProviderError, Transient
from campaigns.provider.codes import describe

SEND_PATH = "/sms/send.do"
TEMPLATE_SEND_PATH = "/sms/v2/send.do"
BALANCE_PATH = "/account/balance.do"
FIND_PATH = "/smslog/findSmsByMessageId.do"

Delivery = Literal["delivered", "undelivered"] | None
_DELIVERED = {"success", "delivered", "delivrd", "成功"}
_UNDELIVERED = {"failed", "fail", "failure", "undelivered", "undeliv", "失败"}


def _no_pace() -> None:
    return None


@dataclass(frozen=True)
class SmsRecord:
    """What findSmsByMessageId returned: the raw text kept verbatim, plus what we understood."""

    message_id: str
    status: str
    delivery: Delivery
    raw: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    requests: int
    confirmed_by_lookup: bool = False


def parse_record(message_id: str, data: Any) -> SmsRecord | None:
    """Tolerant: an object, a JSON string holding one, or nothing (null, "", {}) for unknown ids."""
    if isinstance(data, str):
        text = data.strip()
        if not text or text == "null":
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return SmsRecord(message_id, text, None, text, {})
    if not data:
        return None
    if not isinstance(data, dict):
        raw = json.dumps(data, ensure_ascii=False)
        return SmsRecord(message_id, raw, None, raw, {})
    status = str(data.get("status", ""))
    lowered = status.strip().lower()
    delivery: Delivery = (
        "delivered" if lowered in _DELIVERED else "undelivered" if lowered in _UNDELIVERED else None
    )
    raw = json.dumps(data, ensure_ascii=False, sort_keys=True)
    return SmsRecord(str(data.get("messageId", message_id)), status, delivery, raw, data)


def _raise_for_code(code: int, data: Any) -> None:
    known = describe(code)
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    if known.kind == "account":
        raise AccountBlocked(code, text, known.meaning, known.advice)
    if known.kind == "transient":
        raise Transient(f"provider code {code}: {known.meaning}", maybe_sent=True)
    raise MessageRejected(code, text, known.meaning)


class ZhenziClient:
    """Thread-safe: each thread gets its own keep-alive ``requests.Session``."""

    def __init__(
        self,
        api_url: str,
        app_id: str,
        app_secret: Secret,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        ca_bundle: str | None = None,
        max_attempts: int = 5,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        visibility_wait: float = 1.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.app_id = app_id
        self._secret = app_secret
        self.timeout = (connect_timeout, read_timeout)
        self.verify: bool | str = ca_bundle or True
        self.max_attempts = max_attempts
        # Exponential backoff with jitter, so workers that failed together do not retry together.
        self.backoff = wait_exponential(multiplier=backoff_initial, max=backoff_max) + wait_random(
            0, backoff_initial
        )
        self.visibility_wait = visibility_wait
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"ZhenziClient({self.api_url!r}, app_id={self.app_id!r})"

    # -- the four calls ----

    def send(
        self, number: str, message: str, message_id: str, pace: Callable[[], None] = _no_pace
    ) -> SendResult:
        """``pace`` is called before every request after the first (retries and lookups), so
        they take their slot from the caller's rate limit too."""
        fields = {"number": number, "message": message, "messageId": message_id}
        return self._send_once(SEND_PATH, fields, message_id, pace)

    def send_template(
        self,
        number: str,
        template_id: str,
        params: list[str],
        message_id: str,
        pace: Callable[[], None] = _no_pace,
    ) -> SendResult:
        fields = {
            "number": number,
            "templateId": template_id,
            "templateParams": json.dumps(params, ensure_ascii=False),
            "messageId": message_id,
        }
        return self._send_once(TEMPLATE_SEND_PATH, fields, message_id, pace)

    def balance(self) -> int:
        return int(self._retrying(lambda: self._call(BALANCE_PATH, {})))

    def find(self, message_id: str) -> SmsRecord | None:
        """The provider's record of ``message_id``, or None when it does not know it."""
        data = self._retrying(lambda: self._call(FIND_PATH, {"messageId": message_id}))
        return parse_record(message_id, data)

    def find_settled(self, message_id: str, last_request_at: float) -> SmsRecord | None:
        """Like ``find``, but not before a request sent at ``last_request_at`` could be visible."""
        wait = last_request_at + self.visibility_wait - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return self.find(message_id)

    # -- sending exactly once ----

    def _send_once(
        self, path: str, fields: dict[str, str], message_id: str, pace: Callable[[], None]
    ) -> SendResult:
        """Send, retrying transient failures; before any re-send, ask whether it arrived."""
        requests_made = 0
        last_maybe_sent: float | None = None
        try:
            for attempt in self._attempts():
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        pace()
                    if last_maybe_sent is not None:
                        if self.find_settled(message_id, last_maybe_sent) is not None:
                            return SendResult(requests_made, confirmed_by_lookup=True)
                        last_maybe_sent = None
                    requests_made += 1
                    started = time.monotonic()
                    try:
                        self._call(path, fields)
                    except Transient as exc:
                        if exc.maybe_sent:
                            last_maybe_sent = started
                        raise
                    return SendResult(requests_made)
        except Transient as exc:
            final = Transient(str(exc), maybe_sent=last_maybe_sent is not None)
            final.requests = requests_made
            raise final from None
        except ProviderError as exc:
            exc.maybe_sent = last_maybe_sent is not None
            exc.requests = requests_made
            raise
        raise AssertionError("unreachable: tenacity re-raises the last error")

    # -- plumbing ----

    def _attempts(self) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self.backoff,
            retry=retry_if_exception_type(Transient),
            reraise=True,
        )

    def _retrying(self, call):
        for attempt in self._attempts():
            with attempt:
                return call()
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # Proxies from the environment are worked out once here, not on every request.
            session.trust_env = False
            session.proxies = requests.utils.get_environ_proxies(self.api_url)
            session.headers["Content-Type"] = "application/x-www-form-urlencoded; charset=UTF-8"
            session.headers["User-Agent"] = "campaigns (+https://pypi.org/project/campaigns)"
            self._local.session = session
        return session

    def _call(self, path: str, fields: dict[str, str]) -> Any:
        """One POST. Returns ``data`` on code 0; raises the error that says what to do otherwise."""
        body = urlencode(
            {"appId": self.app_id, "appSecret": self._secret.reveal(), **fields}, encoding="utf-8"
        )
        try:
            response = self._session().post(
                self.api_url + path,
                data=body.encode("ascii"),
                timeout=self.timeout,
                verify=self.verify,
            )
        except requests.ConnectTimeout:
            raise Transient(
                "could not connect to the provider (timeout)", maybe_sent=False
            ) from None
        except requests.ReadTimeout:
            raise Transient("no reply from the provider in time", maybe_sent=True) from None
        except requests.exceptions.SSLError as exc:
            raise AccountBlocked(
                0,
                "TLS error",
                f"TLS certificate check failed: {exc}",
                "check --api-url, or give --ca-bundle for a corporate proxy",
            ) from None
        except requests.ConnectionError as exc:
            refused = isinstance(
                getattr(exc.args[0] if exc.args else None, "reason", None), NewConnectionError
            )
            reason = "could not connect to the provider" if refused else "connection dropped"
            raise Transient(reason, maybe_sent=not refused) from None
        return self._parse(response)

    @staticmethod
    def _parse(response: requests.Response) -> Any:
        status = response.status_code
        if status >= 500 or status == 429:
            raise Transient(f"provider answered HTTP {status}", maybe_sent=status != 429)
        if status != 200:
            raise AccountBlocked(
                status,
                f"HTTP {status}",
                f"the API URL answered HTTP {status}",
                "check --api-url / ZHENZI_API_URL",
            )
        try:
            reply = json.loads(response.content.decode("utf-8"))
            code = int(reply["code"])
        except (ValueError, KeyError, TypeError):
            raise Transient("provider reply was not the expected JSON", maybe_sent=True) from None
        if code != 0:
            _raise_for_code(code, reply.get("data"))
        return reply.get("data")
