"""How a campaign is sent, remembered with it: a resume, on any host, sends the same way.

The settings are stored (JSON, in the campaign row) when a send first starts. `send NAME` with
no options uses them; an option given again replaces its stored value, and the change is said.
Values are kept as the option text the user would type, so they print as a command line.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from campaigns.errors import UserError
from campaigns.schedule import MARKETING_WINDOW, Cap, Window, parse_moment
from campaigns.sending.options import resume_command  # noqa: F401  (re-exported for the CLI)
from campaigns.sending.pacing import DEFAULT_CAP

if TYPE_CHECKING:
    from campaigns.sending import SendOptions

DEFAULT_CONCURRENCY = DEFAULT_CAP  # the send stage's cap on requests in flight
DEFAULT_ERROR_BUDGET = "20%/200"
# An option value that clears a stored setting (--window none, --until none, ...).
NONE = "none"


@dataclass(frozen=True)
class SendSettings:
    """One field per `send` option that shapes a campaign's sending (not ``--no-wait``, which
    only says what this run does outside the window)."""

    rate: float | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    window: str | None = None
    marketing: bool = False
    start_at: str | None = None  # "YYYY-MM-DD HH:MM", Asia/Shanghai
    until: str | None = None
    cap: str | None = None
    error_budget: str = DEFAULT_ERROR_BUDGET
    allow_partial: bool = False
    without_opt_out: bool = False  # a marketing text without 退订, sent knowingly

    @classmethod
    def from_json(cls, text: str | None) -> SendSettings | None:
        if not text:
            return None
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    def window_shown(self) -> str | None:
        """The window this campaign sends in: its own, else the marketing one, else none."""
        return self.window or (MARKETING_WINDOW if self.marketing else None)

    def options(self, **run: Any) -> SendOptions:
        """The send options these settings mean; ``run`` adds what only this run decides."""
        from campaigns.sending import SendOptions

        window = self.window_shown()
        return SendOptions(
            rate=self.rate,
            concurrency=self.concurrency,
            window=Window.parse(window) if window else None,
            start_at=parse_moment(self.start_at, "--at") if self.start_at else None,
            until=parse_moment(self.until, "--until") if self.until else None,
            cap=Cap.parse(self.cap) if self.cap else None,
            error_budget=parse_error_budget(self.error_budget),
            allow_partial=self.allow_partial,
            **run,
        )

    def as_options(self) -> str:
        """The settings as `send` options, defaults left out ("defaults" when all are)."""
        shown = [_option(name, value) for name, value in self._values().items()]
        return " ".join(shown) or "defaults (as fast as the account allows)"

    def _values(self) -> dict[str, Any]:
        defaults = SendSettings()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(defaults, f.name)
        }


# field -> the option's name on the command line
OPTION_NAMES = {
    "rate": "--rate",
    "concurrency": "--concurrency",
    "window": "--window",
    "marketing": "--marketing",
    "start_at": "--at",
    "until": "--until",
    "cap": "--cap",
    "error_budget": "--error-budget",
    "allow_partial": "--allow-partial",
    "without_opt_out": "--without-opt-out",
}


def _option(name: str, value: Any) -> str:
    option = OPTION_NAMES[name]
    if isinstance(value, bool):
        return option if value else f"--no-{option[2:]}"
    if value is None:
        return f"{option} {NONE}"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{option} {shlex.quote(str(value))}"


@dataclass(frozen=True)
class SendStart:
    """What a send starts with: the effective settings, what this run changed, and whether
    they were stored before (a resume)."""

    settings: SendSettings
    changes: list[str]
    resumed: bool
    warnings: list[str] = field(default_factory=list)  # the campaign's, shown at every start

    def line(self) -> str:
        """One line for the operator: which settings this run uses, and what changed."""
        if self.changes:
            return (
                f"send settings changed: {'; '.join(self.changes)}; "
                f"now {self.settings.as_options()}"
            )
        if self.resumed:
            return f"resuming with the stored send settings: {self.settings.as_options()}"
        return f"send settings stored with the campaign: {self.settings.as_options()}"


def merge(
    stored: SendSettings | None, given: Mapping[str, Any], now: datetime
) -> tuple[SendSettings, list[str]]:
    """The stored settings with the options given explicitly on top (raw option text, as typed),
    and the list of what changed. A start time (--at) already passed is dropped: it is not
    applied again."""
    base = stored or SendSettings()
    values = {name: _normalise(name, value) for name, value in given.items()}
    merged = replace(base, **values)
    changes = []
    if stored is not None:
        changes = [
            f"{OPTION_NAMES[name]} {_shown(getattr(stored, name))} → {_shown(value)}"
            for name, value in values.items()
            if getattr(stored, name) != value
        ]
    if merged.start_at and parse_moment(merged.start_at, "--at") <= now:
        if stored is not None and stored.start_at == merged.start_at:
            changes.append(f"--at {merged.start_at} has passed: not applied again")
        merged = replace(merged, start_at=None)
    return merged, changes


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return NONE if value is None else str(value)


def _normalise(name: str, value: Any) -> Any:
    """A given option's value, checked now (a typo is refused before anything is stored)."""
    if isinstance(value, str) and value.strip().lower() == NONE:
        if name in ("window", "start_at", "until", "cap", "rate"):
            return None
        raise UserError(f"{OPTION_NAMES[name]} cannot be {NONE}")
    if name == "rate":
        return _rate(value)
    if name == "window":
        return str(Window.parse(value))
    if name in ("start_at", "until"):
        return f"{parse_moment(value, OPTION_NAMES[name]):%Y-%m-%d %H:%M}"
    if name == "cap":
        Cap.parse(value)
        return value.strip()
    if name == "error_budget":
        parse_error_budget(value)
        return value.strip()
    return value


def _rate(value: Any) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise UserError(f"--rate {value!r}: expected messages per second, e.g. 50") from None
    if rate <= 0:
        raise UserError(f"--rate {value!r}: must be above 0 (or `none`: no limit)")
    return rate


def parse_error_budget(text: str) -> tuple[float, int]:
    try:
        share, window = text.split("/")
        return float(share.rstrip("%")) / 100, int(window)
    except ValueError:
        raise UserError(f"--error-budget {text!r}: expected X%/N, e.g. 20%/200") from None
