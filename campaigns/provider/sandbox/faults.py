"""Injected faults: one seeded set of random draws per request, so a seeded run is reproducible."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, fields

from campaigns.provider.sandbox.config import UNKNOWN_REPLIES, SandboxConfig
from campaigns.provider.sandbox.wire import After, BadGateway, Refused


@dataclass(frozen=True)
class Dice:
    """One request's random draws, taken together whatever the request needs."""

    fail_1000: float
    fail_5xx: float
    drop: float
    slow: float
    undelivered: float
    jitter: float


class Faults:
    """Thread-safe source of draws. The not-found forms have a generator of their own, so
    choosing one never shifts the fault and outcome sequence of a seeded run."""

    def __init__(self, seed: int | None) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._forms = random.Random(None if seed is None else f"unknown-reply-{seed}")

    def roll(self) -> Dice:
        with self._lock:
            return Dice(*(self._rng.random() for _ in fields(Dice)))

    def not_found_form(self, configured: str) -> str:
        """The configured form, or for ``random`` any one of the others."""
        if configured != "random":
            return configured
        with self._lock:
            return self._forms.choice([form for form in UNKNOWN_REPLIES if form != "random"])


def inject_failure(config: SandboxConfig, dice: Dice) -> None:
    """Code 1000 or HTTP 502 instead of an answer; nothing is accepted (1000 wins over 502)."""
    if dice.fail_1000 < config.fail_1000:
        raise Refused(1000)
    if dice.fail_5xx < config.fail_5xx:
        raise BadGateway


def after_accept(config: SandboxConfig, dice: Dice) -> After:
    """What becomes of an accepted send's reply: sent, dropped unsent, or late (drop wins)."""
    if dice.drop < config.drop_after_accept:
        return "drop"
    if dice.slow < config.slow_reply:
        return "slow"
    return "reply"
