"""The provider's rules: credentials, fields, limits, charging and lookups, one request at a time.

Nothing here knows about sockets: ``Provider.answer`` takes a method, a path and a body and
returns the reply; the HTTP layer only frames it (see the package docstring for the rules).
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from campaigns.provider.sandbox.config import SandboxConfig
from campaigns.provider.sandbox.faults import Dice, Faults, after_accept, inject_failure
from campaigns.provider.sandbox.state import Account, OverDailyLimit, Overdrawn, Record
from campaigns.provider.sandbox.wire import (
    NOT_FOUND_DATA,
    SENT_TEXT,
    BadGateway,
    Refused,
    Reply,
    bad_gateway_reply,
    html_reply,
    json_reply,
    parse_form,
    record_data,
    refused_reply,
)
from campaigns.schedule import SHANGHAI

SEND_PATHS = frozenset({"/sms/send.do", "/sms/v2/send.do"})
MAX_UNITS = 1000

_NUMBER = re.compile(r"1[3-9][0-9]{9}")
_PLACEHOLDER = re.compile(r"\{([1-9][0-9]*)\}")

Form = dict[str, str]


def utf16_units(text: str) -> int:
    """Length as the provider counts it: UTF-16 code units (an emoji outside the BMP is 2)."""
    return len(text.encode("utf-16-le")) // 2


def segments(text: str) -> int:
    """Billed SMS segments: one up to 70 units, else 67 units per concatenated segment."""
    units = utf16_units(text)
    return 1 if units <= 70 else -(-units // 67)


class Provider:
    """Answers requests against one ``Account``; counts what arrives, for tests and benchmarks."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.account = Account(config.balance)
        self._faults = Faults(config.seed)
        self._stats_lock = threading.Lock()
        self._arrivals: list[float] = []
        self._counts: Counter[str] = Counter()
        self._routes: dict[str, Callable[[Form, Dice], Reply]] = {
            "/sms/send.do": self._send,
            "/sms/v2/send.do": self._send_v2,
            "/account/balance.do": self._balance,
            "/smslog/findSmsByMessageId.do": self._find,
        }

    def answer(self, method: str, path: str, body: bytes) -> Reply:
        """One request's reply; raises ``MalformedRequest`` for a body that is not a UTF-8 form.
        Latency and the drop/slow faults are the HTTP layer's to apply."""
        self._note_arrival(path)
        route = self._routes.get(path)
        if route is None:
            return html_reply(404, "404 Not Found")
        if method != "POST":
            return html_reply(405, "405 Method Not Allowed", (("Allow", "POST"),))
        form = parse_form(body)
        try:
            return route(form, self._faults.roll())
        except Refused as refused:
            return refused_reply(refused.code)
        except BadGateway:
            return bad_gateway_reply()

    # -- statistics ----

    def _note_arrival(self, path: str) -> None:
        now = time.monotonic()
        with self._stats_lock:
            self._counts[path] += 1
            if path in SEND_PATHS:
                self._arrivals.append(now)

    def arrival_times(self) -> list[float]:
        with self._stats_lock:
            return list(self._arrivals)

    def request_count(self, path: str) -> int:
        with self._stats_lock:
            return self._counts[path]

    # -- the four calls ----

    def _check_credentials(self, form: Form) -> None:
        if form.get("appId", "") != self.config.app_id:
            raise Refused(105)
        secret = form.get("appSecret", "").encode("utf-8")
        if not hmac.compare_digest(secret, self.config.app_secret.encode("utf-8")):
            raise Refused(110)

    def _send(self, form: Form, dice: Dice) -> Reply:
        self._check_credentials(form)
        number = _checked_number(form)
        return self._submit(number, form.get("message", ""), form.get("messageId", ""), dice)

    def _send_v2(self, form: Form, dice: Dice) -> Reply:
        self._check_credentials(form)
        number = _checked_number(form)
        message = self._render(form.get("templateId", ""), form.get("templateParams", ""))
        return self._submit(number, message, form.get("messageId", ""), dice)

    def _render(self, template_id: str, raw_params: str) -> str:
        if not template_id:
            raise Refused(100)
        template = self.config.templates.get(template_id)
        if template is None:
            raise Refused(117)
        params = _template_params(raw_params)
        needed = max((int(n) for n in _PLACEHOLDER.findall(template)), default=0)
        if len(params) < needed:
            raise Refused(100)
        return _PLACEHOLDER.sub(lambda m: params[int(m.group(1)) - 1], template)

    def _submit(self, number: str, message: str, message_id: str, dice: Dice) -> Reply:
        if not message:
            raise Refused(100)
        if utf16_units(message) > MAX_UNITS:
            raise Refused(101)
        inject_failure(self.config, dice)
        self._accept(number, message, message_id, dice)
        return json_reply(0, SENT_TEXT, after_accept(self.config, dice))

    def _accept(self, number: str, message: str, message_id: str, dice: Dice) -> None:
        config = self.config
        now = time.monotonic()
        delay = config.delivery_delay_s * (0.5 + dice.jitter)
        record = Record(
            message_id=message_id,
            number=number,
            message=message,
            segments=segments(message),
            created=datetime.now(SHANGHAI),
            delay_s=delay,
            visible_at=now + config.visibility_delay_s,
            due_at=now + delay,
            delivered=dice.undelivered >= config.undelivered_share,
        )
        try:
            self.account.accept(record, config.daily_limit)
        except OverDailyLimit:
            raise Refused(109) from None
        except Overdrawn:
            raise Refused(108) from None

    def _balance(self, form: Form, dice: Dice) -> Reply:
        self._check_credentials(form)
        inject_failure(self.config, dice)
        return json_reply(0, self.account.balance)

    def _find(self, form: Form, dice: Dice) -> Reply:
        self._check_credentials(form)
        message_id = form.get("messageId", "")
        if not message_id:
            raise Refused(100)
        inject_failure(self.config, dice)
        now = time.monotonic()
        found = self.account.latest_visible(message_id, now)
        if found is not None:
            return json_reply(0, record_data(found, now, self.config.shape))
        form_name = self._faults.not_found_form(self.config.unknown_reply)
        if form_name == "code100":
            raise Refused(100)
        return json_reply(0, NOT_FOUND_DATA[form_name])


def _checked_number(form: Form) -> str:
    number = form.get("number", "")
    if not _NUMBER.fullmatch(number):
        raise Refused(100)
    return number


def _template_params(raw: str) -> list[str]:
    """An empty or absent field counts as ``[]`` (templates without parameters)."""
    if not raw:
        return []
    try:
        params = json.loads(raw)
    except (ValueError, RecursionError):  # [[[[…]]]] nested past the parser's depth
        raise Refused(100) from None
    if not isinstance(params, list) or not all(_is_text(p) for p in params):
        raise Refused(100)
    return params


def _is_text(value: object) -> bool:
    """A string that is valid Unicode: JSON's ``"\\ud800"`` decodes to a lone surrogate."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
