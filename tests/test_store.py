"""The store: migrations on a fresh and an old database, and the shortcut that skips Alembic."""

from alembic.script import ScriptDirectory
from sqlalchemy import inspect

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
