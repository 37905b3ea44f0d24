"""The account behind the sandbox: balance, daily counts, delivery records and the ledger."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any


@dataclass(frozen=True)
class Record:
    """An accepted SMS; its outcome is fixed at acceptance and revealed by the clock."""

    message_id: str
    number: str
    message: str
    segments: int
    created: datetime
    delay_s: float
    visible_at: float
    due_at: float
    delivered: bool

    def ledger_entry(self) -> dict[str, Any]:
        """What the phone received, as one ledger line."""
        return {
            "messageId": self.message_id or None,
            "number": self.number,
            "message": self.message,
            "time": self.created.isoformat(timespec="milliseconds"),
            "segments": self.segments,
        }


class Overdrawn(Exception):
    """The balance cannot pay for this SMS (the provider's 108)."""


class OverDailyLimit(Exception):
    """This number has had its SMS for today (the provider's 109)."""


class Account:
    """Thread-safe. Charging, recording and ledgering an SMS happen as one step, or not at all."""

    def __init__(self, balance: int) -> None:
        self._lock = threading.Lock()
        self._balance = balance
        self._daily: Counter[tuple[str, date]] = Counter()
        self._records: dict[str, list[Record]] = {}
        self._ledger: list[dict[str, Any]] = []
        self._ledger_file: IO[str] | None = None

    @property
    def balance(self) -> int:
        with self._lock:
            return self._balance

    def set_balance(self, n: int) -> None:
        with self._lock:
            self._balance = n

    def open_ledger(self, path: str) -> None:
        """Append to ``path`` from now on (kept across restarts: the file is opened in append)."""
        with self._lock:
            if self._ledger_file is None:
                self._ledger_file = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def close_ledger(self) -> None:
        with self._lock:
            ledger_file, self._ledger_file = self._ledger_file, None
        if ledger_file is not None:
            ledger_file.close()

    def accept(self, record: Record, daily_limit: int | None) -> None:
        """Check the daily limit (None or 0: none) and balance, then charge, record and ledger."""
        day = (record.number, record.created.date())
        entry = record.ledger_entry()
        with self._lock:
            if daily_limit and self._daily[day] >= daily_limit:
                raise OverDailyLimit
            if self._balance < record.segments:
                raise Overdrawn
            self._balance -= record.segments
            self._daily[day] += 1
            if record.message_id:
                self._records.setdefault(record.message_id, []).append(record)
            self._ledger.append(entry)
            if self._ledger_file is not None:
                self._ledger_file.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self._ledger_file.flush()

    def latest_visible(self, message_id: str, now: float) -> Record | None:
        """The most recent record for this id that a lookup may already see."""
        with self._lock:
            records = self._records.get(message_id, [])
            return next((r for r in reversed(records) if r.visible_at <= now), None)

    def ledger_entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._ledger]
