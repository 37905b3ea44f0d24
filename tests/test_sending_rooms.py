"""The send stage's rooms: typed hand-offs, one stop decision, no room importing another."""

from __future__ import annotations

import ast
import threading
from datetime import datetime
from pathlib import Path

from campaigns.cli.base import _STOP_EXIT_CODES
from campaigns.errors import AccountBlocked, StopReason
from campaigns.sending.stop import Stop
from campaigns.store.models import SENDING, SENT
from campaigns.store.outcomes import Outcome

SENDING_DIR = Path(__file__).resolve().parent.parent / "campaigns" / "sending"
# Below the rooms: what any of them may import.
SHARED = {"stop", "outcomes", "options", "pacing"}


def sending_imports() -> dict[str, set[str]]:
    """Each module of campaigns/sending → the modules of campaigns/sending it imports."""
    graph = {}
    for path in SENDING_DIR.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("campaigns.sending."):
                    found.add(node.module.rsplit(".", 1)[1])
                elif node.module == "campaigns.sending":
                    found |= {alias.name for alias in node.names}
        graph[path.stem] = found
    return graph


def test_rooms_import_only_what_lies_below_them():
    graph = sending_imports()
    rooms = set(graph) - SHARED - {"run", "__init__"}
    assert rooms >= {"gate", "workers", "lookups", "leases", "budget"}
    for room in rooms:
        assert graph[room] <= SHARED | {"leases"}, (room, graph[room])
        assert "run" not in graph[room]
    assert graph["stop"] == set() and graph["pacing"] == set()
    assert graph["options"] <= {"pacing"}
    assert graph["run"] >= {"gate", "workers", "lookups", "leases", "budget", "stop"}


def test_the_reason_that_wins_is_the_first_by_precedence():
    stop = Stop(threading.Event())
    stop.request(StopReason.INTERRUPTED)
    stop.request(StopReason.SCHEDULE, "outside the send window 08:00-21:00")
    stop.request(StopReason.PAUSED, "paused by `campaigns pause`")
    stop.request(StopReason.PAUSED, "a later detail is not kept")
    assert stop.is_set()
    assert stop.settled() == (StopReason.PAUSED, "paused by `campaigns pause`")
    stop.refused(AccountBlocked(108, "短信余额不足", "balance insufficient"))
    assert stop.settled() == (StopReason.ACCOUNT, "")
    assert stop.account is not None and stop.account.code == 108


def test_a_caller_that_sets_the_event_stops_the_run_without_a_reason():
    event = threading.Event()
    stop = Stop(event)
    event.set()
    assert stop.is_set() and stop.settled() is None


def test_every_stop_reason_has_an_exit_code_and_only_an_interrupt_is_130():
    assert set(_STOP_EXIT_CODES) == set(StopReason)
    assert {r for r, code in _STOP_EXIT_CODES.items() if code == 130} == {StopReason.INTERRUPTED}


def test_an_outcome_says_which_columns_it_writes():
    settled = Outcome(1, SENT, attempts=1)
    unknown = Outcome(1, SENDING, attempts=1, keep_lease=True)
    delivered = Outcome(1, "delivered", delivery=True, provider_record="{}")
    assert settled.values()["lease_until"] is None  # gives the lease up
    assert "due_at" not in settled.values()
    deferred = Outcome(1, "deferred", due_at=datetime(2026, 12, 2), error_code=109)
    assert deferred.values()["due_at"] == datetime(2026, 12, 2)
    assert "lease_until" not in unknown.values()  # keeps holding the message
    assert set(delivered.values()) == {"state", "final_at", "provider_record", "error_text"}
