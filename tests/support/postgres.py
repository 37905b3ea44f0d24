"""PostgreSQL for tests and benchmarks: a server on which each run creates a database of its own."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

PG_SERVER = os.environ.get("CAMPAIGNS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Whether the server answered (checked once per process), and how many tests used it.
_state: dict[str, Any] = {"ran": 0}


def pg_admin(server: str = PG_SERVER, timeout: int = 5) -> tuple[Any, Any]:
    """(autocommit psycopg connection to ``server``, its SQLAlchemy URL)."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server)
    connection = psycopg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        dbname=url.database,
        password=url.password,
        autocommit=True,
        connect_timeout=timeout,
    )
    return connection, url


@contextlib.contextmanager
def pg_database(server: str = PG_SERVER, prefix: str = "bench") -> Iterator[str]:
    """A fresh, empty PostgreSQL database on ``server`` for one run; dropped at the end."""
    admin, url = pg_admin(server)
    name = f"campaigns_{prefix}_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def pg_unreachable() -> str | None:
    """Why the server cannot be reached, or None when it can (asked once per process)."""
    if "problem" not in _state:
        try:
            connection, _ = pg_admin(timeout=3)
            connection.close()
            _state["problem"] = None
        except Exception as exc:  # any failure to connect means: not reachable here
            _state["problem"] = f"{type(exc).__name__}: {exc}".strip()
    return _state["problem"]


def require_pg() -> None:
    """No server: fail where PostgreSQL is required (CI), else skip and say so in the summary."""
    import pytest  # here: benchmarks use this module without pytest

    problem = pg_unreachable()
    if problem:
        if os.environ.get("CAMPAIGNS_REQUIRE_PG"):
            pytest.fail(f"PostgreSQL required but not reachable at {PG_SERVER}: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_SERVER}")


def note_pg_test() -> None:
    _state["ran"] += 1


def pg_summary() -> str | None:
    """The line the test run ends with: skipped (and why) or ran against the server."""
    problem = _state.get("problem")
    if problem:
        return (
            f"PostgreSQL NOT reachable at {PG_SERVER} ({problem}): its tests were skipped, "
            "not passed. Set CAMPAIGNS_TEST_PG to a server URL to run them."
        )
    if _state["ran"]:
        return f"PostgreSQL tests ran against {PG_SERVER}."
    return None
