"""How the simulated provider behaves: one mutable dataclass, read afresh on every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

APP_NAME = "campaigns-sandbox"
DEFAULT_MAX_BODY_BYTES = 64 * 1024

Shape = Literal["real", "rich"]
UnknownReply = Literal["null", "empty", "object", "list", "code100", "random"]
SHAPES: tuple[str, ...] = get_args(Shape)
UNKNOWN_REPLIES: tuple[str, ...] = get_args(UnknownReply)


def _default_templates() -> dict[str, str]:
    """One template with parameters, one without (the real SDKs then omit ``templateParams``)."""
    return {
        "1001": "【榛子科技】您的验证码为{1},{2}分钟内有效。",
        "1002": "【榛子科技】您的包裹已到驿站,请及时取件。",
    }


@dataclass
class SandboxConfig:
    """How the simulated provider behaves; mutable while it serves (read on every request).

    ``balance``, ``seed``, ``host``, ``port``, ``ledger``, ``tls_cert`` and ``tls_key`` are read
    once, when serving starts; use ``Sandbox.set_balance`` to change the balance later.
    """

    host: str = "127.0.0.1"
    port: int = 0
    app_id: str = "demo-app"
    app_secret: str = "demo-secret"
    balance: int = 1_000_000
    latency_ms: float = 0.0
    ledger: str | None = None
    shape: Shape = "real"
    unknown_reply: UnknownReply = "null"
    daily_limit: int | None = None
    delivery_delay_s: float = 1.5
    undelivered_share: float = 0.05
    visibility_delay_s: float = 0.0
    fail_1000: float = 0.0
    fail_5xx: float = 0.0
    drop_after_accept: float = 0.0
    slow_reply: float = 0.0
    slow_reply_s: float = 15.0
    seed: int | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    idle_timeout_s: float = 120.0
    templates: dict[str, str] = field(default_factory=_default_templates)
