"""Engine, pragmas and automatic migration: every command opens the store through ``open_store``."""

from __future__ import annotations

import re
from importlib import resources

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from campaigns.errors import UserError

# The newest migration in migrations/versions (a test checks it against Alembic's own view).
# Knowing it here lets every command skip loading Alembic when the schema is already current.
SCHEMA_HEAD = "0005"


def alembic_config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("campaigns.migrations")))
    return config


def current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


# How long a write waits for another command's transaction.  An import is one transaction (5M
# rows held the lock ~100 s on a busy 2-core machine), and a `send` into another campaign
# meanwhile should wait for it, not fail: its leases and fenced writes keep a stall safe.
BUSY_TIMEOUT_MS = 600_000


def _tune_sqlite(dbapi_connection, _record) -> None:
    # WAL lets `status` and `report` read while `send` writes. FULL syncs every commit, so a
    # `sending` mark survives even a power cut once its request may leave; commits are batched.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# user:password@ up to the last "@": a password may itself hold an unescaped "@" or "/".
_PASSWORD = re.compile(r"(?<=://)([^/@:]*):.*@(?=[^@]*$)")


def masked(url: str) -> str:
    """The database URL fit to print: its password, if any, replaced by ``***``.

    Works on text SQLAlchemy cannot parse too, since that is exactly when it gets printed.
    """
    return _PASSWORD.sub(r"\1:***@", url)


def create_store_engine(url: str) -> Engine:
    try:
        engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    except (ArgumentError, ImportError, ValueError) as exc:
        reason = str(exc).replace(url, masked(url))
        raise UserError(f"cannot use database {masked(url)!r}: {reason}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _tune_sqlite)
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (cheap when it already is)."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.begin() as connection:
            revision = current_revision(connection)
            if revision == SCHEMA_HEAD:
                return
            _refuse_newer(revision, where)
            from alembic import command

            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise UserError(f"cannot open database {where}: {exc.orig}") from None
    except DatabaseError as exc:  # SQLite's "file is not a database", "disk image is malformed"
        raise UserError(
            f"{where} is not a campaigns database ({str(exc.orig).strip()}); "
            "give another --db, or move that file away"
        ) from None


def _refuse_newer(revision: str | None, where: str) -> None:
    """A schema this version does not know was made by a newer one: upgrading would fail, and
    downgrading it would lose what the newer version stores."""
    if revision is None or revision in _known_revisions():
        return
    raise UserError(
        f"{where} was made by a newer version of campaigns (schema {revision}, this version "
        f"knows up to {SCHEMA_HEAD}): use the newer campaigns that made it, or upgrade this one"
    )


def _known_revisions() -> set[str]:
    versions = resources.files("campaigns.migrations").joinpath("versions")
    return {entry.name[:4] for entry in versions.iterdir() if entry.name[:4].isdigit()}


class Store:
    """The database of campaigns; ``session()`` hands out short-lived ORM sessions."""

    def __init__(self, url: str) -> None:
        self.engine = create_store_engine(url)
        migrate(self.engine)
        self.session: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
