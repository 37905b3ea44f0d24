"""The Zhenzi HTTP API: four calls, typed replies, retries, and the lookup-before-resend rule.

Every call is a form-encoded POST carrying appId and appSecret; the reply is ``{"code", "data"}``.
Failures are sorted by what the caller must do (see ``campaigns.errors``). A send whose outcome
is unknown (read timeout, dropped connection, 5xx, garbage reply, code 1000) is never repeated
blindly: the client waits out the provider's visibility window, looks the messageId up, and sends
again only when the provider does not know it.

It relies on nothing the real provider has not been seen to send (see ``parse_record``), never
follows a redirect (the form carries the appSecret), and checks TLS as ``provider.tls`` says.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from urllib3.exceptions import InsecureRequestWarning, NameResolutionError, NewConnectionError

from campaigns.config import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, Secret
from campaigns.errors import (
    AccountBlocked,
    ConnectionProblem,
    MessageRejected,
    ProviderError,
    Transient,
    UserError,
)
from campaigns.provider.codes import describe
from campaigns.provider.tls import ProviderAdapter, make_context, tls_failure

SEND_PATH = "/sms/send.do"
TEMPLATE_SEND_PATH = "/sms/v2/send.do"
BALANCE_PATH = "/account/balance.do"
FIND_PATH = "/smslog/findSmsByMessageId.do"

log = logging.getLogger("campaigns")

Delivery = Literal["delivered", "undelivered"] | None
# Status texts with a known meaning, compared lower-cased and stripped. "success" is the only
# one seen from the real provider; the others are the usual carrier (SMPP) receipt words and
# their Chinese forms. Any other text leaves the message not final, its raw record kept.
DELIVERED_TEXTS = frozenset({"success", "delivered", "delivrd", "成功", "已送达", "送达"})
UNDELIVERED_TEXTS = frozenset(
    {
        "failed",
        "fail",
        "failure",
        "undelivered",
        "undeliv",
        "rejected",
        "rejectd",
        "expired",
        "deleted",
        "失败",
        "发送失败",
        "未送达",
    }
)


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


def delivery_of(status: str) -> Delivery:
    """A status text's final state, or None when it is not (or not known to be) final."""
    lowered = status.strip().lower()
    if lowered in DELIVERED_TEXTS:
        return "delivered"
    return "undelivered" if lowered in UNDELIVERED_TEXTS else None


def parse_record(message_id: str, data: Any) -> SmsRecord | None:
    """Tolerant: an object, a JSON string holding one, or nothing for an unknown id.

    "Nothing" is every empty form: null, "", "null", {}, []. Only ``status`` is relied on;
    whatever else the record carries is kept raw.
    """
    if isinstance(data, str):
        text = data.strip()
        if not text or text == "null":
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return SmsRecord(message_id, text, None, text, {})
    if data is None or data == "" or data == {} or data == []:
        return None
    if not isinstance(data, dict):
        raw = json.dumps(data, ensure_ascii=False)
        return SmsRecord(message_id, raw, None, raw, {})
    status = str(data.get("status") or "")
    raw = json.dumps(data, ensure_ascii=False, sort_keys=True)
    return SmsRecord(
        str(data.get("messageId") or message_id), status, delivery_of(status), raw, data
    )


def _raise_for_code(code: int, data: Any) -> None:
    known = describe(code)
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    if known.kind == "account":
        raise AccountBlocked(code, text, known.meaning, known.advice)
    if known.kind == "transient":
        raise Transient(f"provider code {code}: {known.meaning}", maybe_sent=True, error_reply=True)
    raise MessageRejected(code, text, known.meaning)


class ZhenziClient:
    """Thread-safe: each thread gets its own keep-alive ``requests.Session``."""

    def __init__(
        self,
        api_url: str,
        app_id: str,
        app_secret: Secret,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        ca_bundle: str | None = None,
        insecure_tls: bool = False,
        max_attempts: int = 5,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        visibility_wait: float = 1.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.host = _checked_host(self.api_url)
        self.app_id = app_id
        self._secret = app_secret
        self.timeout = (connect_timeout, read_timeout)
        self.insecure_tls = insecure_tls
        self._tls = make_context(ca_bundle, insecure_tls)
        # Called with (path, fields without credentials, HTTP status, reply text) after every
        # reply: `doctor --save` keeps the exchange for a bug report.
        self.on_reply: Callable[[str, dict[str, str], int, str], None] | None = None
        _warn_about_transport(self.api_url, self.host, insecure_tls)
        self.max_attempts = max_attempts
        # Exponential backoff with jitter, so workers that failed together do not retry together.
        self.backoff = wait_exponential(multiplier=backoff_initial, max=backoff_max) + wait_random(
            0, backoff_initial
        )
        self.visibility_wait = visibility_wait
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"ZhenziClient({self.api_url!r}, app_id={self.app_id!r})"

    def single_attempt(self) -> ZhenziClient:
        """The same client (same sessions) making one attempt per call, for a caller that
        retries by itself and must not hold a slot while it waits."""
        single = copy.copy(self)
        single.max_attempts = 1
        return single

    def backoff_for(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure: this client's own backoff."""
        state = RetryCallState(self._attempts(), None, (), {})
        state.attempt_number = failures
        return float(self.backoff(state))

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
        fields = {"number": number, "templateId": template_id, "messageId": message_id}
        if params:  # as the official SDKs do: no templateParams for a template without any
            fields["templateParams"] = json.dumps(params, ensure_ascii=False)
        return self._send_once(TEMPLATE_SEND_PATH, fields, message_id, pace)

    def send_message(
        self,
        number: str,
        message_id: str,
        *,
        content: str,
        template_id: str | None = None,
        params: str | None = None,
        pace: Callable[[], None] = _no_pace,
    ) -> SendResult:
        """The one choice between free text and an approved v2 template (``params``: the JSON
        list stored with the message), for every caller that sends a stored message."""
        if template_id:
            return self.send_template(
                number, template_id, json.loads(params or "[]"), message_id, pace
            )
        return self.send(number, content, message_id, pace)

    def balance(self) -> int:
        return int(self._retrying(lambda: self._call(BALANCE_PATH, {})))

    def find(self, message_id: str) -> SmsRecord | None:
        """The provider's record of ``message_id``, or None when it does not know it.

        An error code that is neither an account nor a transient one (100, or a code nobody
        documented) is how a provider may say "no such id": not found, never failed.
        """
        try:
            data = self._retrying(lambda: self._call(FIND_PATH, {"messageId": message_id}))
        except MessageRejected:
            return None
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
            final = Transient(
                str(exc), maybe_sent=last_maybe_sent is not None, error_reply=exc.error_reply
            )
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
            session.mount("https://", ProviderAdapter(self._tls))
            session.mount("http://", ProviderAdapter(self._tls))
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
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise self._request_failure(exc) from None
        if self.on_reply is not None:
            self.on_reply(path, fields, response.status_code, response.text)
        return self._parse(response)

    def _request_failure(self, exc: requests.RequestException) -> Exception:
        """Every way a request can fail, as one error (and one line) saying what to do."""
        if isinstance(exc, requests.exceptions.SSLError):
            refused = tls_failure(exc, self.host)
            return refused or Transient("connection cut during TLS", maybe_sent=True)
        if isinstance(exc, requests.ConnectTimeout):
            return Transient("could not connect to the provider (timeout)", maybe_sent=False)
        if isinstance(exc, requests.ReadTimeout):
            return Transient("no reply from the provider in time", maybe_sent=True)
        if isinstance(exc, requests.ConnectionError):
            cause = getattr(exc.args[0] if exc.args else None, "reason", None)
            if isinstance(cause, NameResolutionError):
                return Transient(f"cannot resolve the host {self.host}", maybe_sent=False)
            if isinstance(cause, NewConnectionError):
                return Transient("could not connect to the provider", maybe_sent=False)
            return Transient("connection dropped", maybe_sent=True)
        if isinstance(
            exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
        ):
            # The request went out; its reply broke on the way back.
            return Transient("the provider's reply was cut off or garbled", maybe_sent=True)
        if isinstance(
            exc,
            requests.exceptions.InvalidURL
            | requests.exceptions.MissingSchema
            | requests.exceptions.InvalidSchema,
        ):
            return UserError(
                f"no request can be made to {self.api_url!r} ({exc}); "
                "check --api-url and the HTTPS_PROXY / HTTP_PROXY variables"
            )
        return ConnectionProblem(f"the request to {self.host} failed: {type(exc).__name__}: {exc}")

    @staticmethod
    def _parse(response: requests.Response) -> Any:
        status = response.status_code
        if 300 <= status < 400:
            location = response.headers.get("Location") or "nowhere"
            raise AccountBlocked(
                status,
                f"HTTP {status}",
                f"the API URL answered HTTP {status} redirecting to {location}; not followed, "
                "since the form carries the appSecret",
                "if that is the provider's new address, set --api-url / ZHENZI_API_URL to it",
            )
        if status >= 500 or status == 429:
            raise Transient(
                f"provider answered HTTP {status}", maybe_sent=status != 429, error_reply=True
            )
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


def _checked_host(api_url: str) -> str:
    """The URL's host, or a one-line error before any request is made."""
    try:
        parts = urlsplit(api_url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as exc:
        raise UserError(f"--api-url {api_url!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise UserError(
            f"--api-url {api_url!r} is not an http(s) URL; "
            "expected e.g. https://sms_developer.zhenzikj.com"
        )
    return host


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warn_about_transport(api_url: str, host: str, insecure_tls: bool) -> None:
    """Our own warnings, once per client: urllib3's repeats on every request are silenced."""
    if insecure_tls and api_url.startswith("https:"):
        urllib3.disable_warnings(InsecureRequestWarning)
        log.warning(
            "warning: --insecure-tls: the provider's certificate is NOT checked; anyone on the "
            "network path can read the appSecret and every message"
        )
    if api_url.startswith("http:") and not _is_loopback(host):
        log.warning(
            f"warning: {api_url} is plain http: the appSecret and every message travel in "
            "clear text; use https://"
        )
