"""Settings gathered from options and the environment, in one frozen object."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_DB = "sqlite:///campaigns.db"
DEFAULT_API_URL = "https://sms_developer.zhenzikj.com"


class Secret:
    """Holds the appSecret so that printing, logging or repr never shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class Settings:
    db_url: str = DEFAULT_DB
    api_url: str = DEFAULT_API_URL
    app_id: str = ""
    app_secret: Secret = field(default_factory=lambda: Secret(""))
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    # How long after a request whose outcome is unknown the provider's log is trusted to show
    # it: a lookup that finds nothing after this window means "not received", and only then is
    # the message sent again. A provider slower than this is the one way a duplicate can happen.
    lookup_wait: float = 3.0
    ca_bundle: str | None = None

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Options win over environment variables, which win over defaults."""
        values: dict[str, object] = {
            "db_url": os.environ.get("CAMPAIGNS_DB", DEFAULT_DB),
            "api_url": os.environ.get("ZHENZI_API_URL", DEFAULT_API_URL),
            "app_id": os.environ.get("ZHENZI_APP_ID", ""),
            "app_secret": os.environ.get("ZHENZI_APP_SECRET", ""),
            "read_timeout": float(os.environ.get("ZHENZI_READ_TIMEOUT", 10.0)),
            "lookup_wait": float(os.environ.get("ZHENZI_LOOKUP_WAIT", 3.0)),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if not isinstance(values["app_secret"], Secret):
            values["app_secret"] = Secret(str(values["app_secret"]))
        return cls(**values)  # type: ignore[arg-type]
