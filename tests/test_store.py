"""The store: migrations on a fresh and an old database, and the shortcut that skips Alembic."""

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from campaigns.store.db import (
    BUSY_TIMEOUT_MS,
    SCHEMA_HEAD,
    Store,
    alembic_config,
    current_revision,
)


def test_schema_head_constant_matches_the_migrations():
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_HEAD


def test_fresh_database_is_migrated_to_head_and_reopening_is_a_no_op(any_db_url):
    url = any_db_url
    store = Store(url)
    with store.engine.connect() as connection:
        assert current_revision(connection) == SCHEMA_HEAD
        assert {"campaigns", "messages"} <= set(inspect(connection).get_table_names())
    store.close()
    Store(url).close()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    with store.engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS == 600_000
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_bulk_session_checks_foreign_keys_again_once_it_ends(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")

    def foreign_keys(connection) -> int:
        return connection.exec_driver_sql("PRAGMA foreign_keys").scalar()

    for failing in (False, True):
        try:
            with store.bulk_session() as session:
                assert foreign_keys(session.connection()) == 0
                name = "lost" if failing else "kept"
                session.execute(text("INSERT INTO rate_limits VALUES (:name, 1.0)"), {"name": name})
                if failing:
                    raise RuntimeError("a bad row")
        except RuntimeError:
            pass
        with store.engine.connect() as connection:  # the pool hands back the same connection
            assert foreign_keys(connection) == 1
            with pytest.raises(IntegrityError):  # a message of no campaign
                connection.execute(
                    text(
                        "INSERT INTO message_history VALUES (1, 99, 'x', 'x',"
                        " null, null, 0, null, null, '2026-01-01')"
                    )
                )
    with store.engine.connect() as connection:  # the failed transaction left nothing behind
        rows = connection.execute(text("SELECT name FROM rate_limits")).scalars().all()
    assert rows == ["kept"]
    store.close()
