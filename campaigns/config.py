"""Settings gathered from options and the environment, in one frozen object.

Each default lives here once: the CLI shows these values, and ``Settings.from_env`` falls back
on them. The CLI reads the environment itself (through click) and builds ``Settings`` directly;
``from_env`` is for Python callers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

# Where the database lives when neither --db nor CAMPAIGNS_DB says: ./campaigns.db if that file
# already exists in the current folder (the layout before this default), else campaigns.db in
# the user's data folder (platformdirs: ~/.local/share/campaigns on Linux), so a command run from
# another folder finds the same campaigns instead of silently starting an empty database.
LOCAL_DB = "campaigns.db"
DB_LOCATION_HELP = (
    "Database URL (env CAMPAIGNS_DB) [default: ./campaigns.db if it exists, else campaigns.db in "
    "the user data folder]"
)


def default_db_url() -> str:
    """The database when none is named: the current folder's, else the user's (folder made)."""
    if Path(LOCAL_DB).is_file():
        return f"sqlite:///{LOCAL_DB}"
    from platformdirs import user_data_dir

    folder = Path(user_data_dir("campaigns", appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / LOCAL_DB}"


DEFAULT_API_URL = "https://sms_developer.zhenzikj.com"
# The official SDKs wait 20 s for a reply. A reply later than this leaves a send's outcome
# unknown (settled by a lookup, never by a blind re-send), so the cost of a short timeout is
# extra lookups; the cost of a long one is slower recovery when the provider hangs. The SDKs'
# value is the only evidence of how long real replies take, so it is the default.
DEFAULT_READ_TIMEOUT = 20.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_LOOKUP_WAIT = 3.0

# Settings field -> environment variable. Click declares the same names for the CLI options.
ENVIRONMENT = {
    "db_url": "CAMPAIGNS_DB",
    "api_url": "ZHENZI_API_URL",
    "app_id": "ZHENZI_APP_ID",
    "app_secret": "ZHENZI_APP_SECRET",
    "read_timeout": "ZHENZI_READ_TIMEOUT",
    "lookup_wait": "ZHENZI_LOOKUP_WAIT",
    "ca_bundle": "ZHENZI_CA_BUNDLE",
    "insecure_tls": "ZHENZI_INSECURE_TLS",
}


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


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    db_url: str = field(default_factory=default_db_url)
    api_url: str = DEFAULT_API_URL
    app_id: str = ""
    app_secret: Secret = field(default_factory=lambda: Secret(""))
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    # How long after a request whose outcome is unknown the provider's log is trusted to show
    # it: a lookup that finds nothing after this window means "not received", and only then is
    # the message sent again. A provider slower than this is the one way a duplicate can happen.
    # `campaigns doctor --test-number N` measures the real delay and recommends a value.
    lookup_wait: float = DEFAULT_LOOKUP_WAIT
    # PEM file of CAs trusted instead of the default store (a corporate TLS proxy's CA).
    ca_bundle: str | None = None
    # Skip the certificate check: a warning on every command, noted in the campaign's history.
    insecure_tls: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "app_secret", self.secret(self.app_secret))

    @staticmethod
    def secret(value: str | Secret) -> Secret:
        """The appSecret wrapped (once) so that it never prints."""
        return value if isinstance(value, Secret) else Secret(str(value))

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Options win over environment variables, which win over defaults."""
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, object] = {}
        for name, variable in ENVIRONMENT.items():
            text = os.environ.get(variable)
            if text is not None:
                values[name] = _convert(types[name], text)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def _convert(kind: object, text: str) -> object:
    """An environment string as the field's type (annotations are strings here)."""
    if kind == "float":
        return float(text)
    if kind == "bool":
        return _flag(text)
    return text
