"""Every query a report makes: one snapshot, counts grouped in the database, rows in chunks.

A campaign can hold 5M messages; a report never holds them all.  The summary, the breakdowns and
the charts come from GROUP BY queries whose results are a few thousand rows at most (distinct
number prefixes, time buckets, latency seconds), and the recipient rows arrive in chunks.
All of them read one snapshot, so a send writing meanwhile cannot make the summary and the rows
disagree, nor change how many rows a sheet holds after its header was written.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Integer, cast, extract, func, select, text
from sqlalchemy.sql.elements import ColumnElement

from campaigns.store.models import INVALID, Import, Message

ROW_COLUMNS = (
    "row_number", "raw_phone", "phone", "message_id", "state", "reason", "error_code",
    "error_text", "attempts", "segments", "fields", "queued_at", "sent_at", "final_at",
)  # fmt: skip
SOURCE_COLUMN = "source_file"  # after ROW_COLUMNS in every row: the file the message came from
PREFIX_DIGITS = 7  # the geocoder's depth; the carrier needs the first 4 of them

# The input file's own columns (the keys of ``fields``, stored as JSON text), in order of first
# appearance, with whether any row holds something other than "" and the row's raw phone: a key
# that never does is the column the phone was read from.
_INPUT_KEYS = {
    "sqlite": """
        SELECT j.key, MIN(m.row_number), MIN(j.id),
               SUM(CASE WHEN j.value <> '' AND j.value <> m.raw_phone THEN 1 ELSE 0 END),
               SUM(CASE WHEN j.value <> '' THEN 1 ELSE 0 END)
        FROM messages AS m, json_each(m.fields) AS j
        WHERE m.campaign_id = :campaign
        GROUP BY j.key""",
    "postgresql": """
        SELECT kv.key, MIN(m.row_number), MIN(kv.position),
               SUM(CASE WHEN kv.value <> '' AND kv.value <> m.raw_phone THEN 1 ELSE 0 END),
               SUM(CASE WHEN kv.value <> '' THEN 1 ELSE 0 END)
        FROM messages AS m
        CROSS JOIN LATERAL json_each_text(m.fields::json)
            WITH ORDINALITY AS kv(key, value, position)
        WHERE m.campaign_id = :campaign
        GROUP BY kv.key""",
}


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose every query sees the database as it was at the first one."""
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # pysqlite runs SELECTs outside a transaction; WAL keeps the snapshot once begun.
            connection.exec_driver_sql("BEGIN")
        else:
            connection.execution_options(isolation_level="REPEATABLE READ")
        try:
            yield connection
        finally:
            connection.rollback()


def _of(campaign_id: int, states: Collection[str] | None = None) -> list[ColumnElement[bool]]:
    where = [Message.campaign_id == campaign_id]
    if states is not None:  # an empty collection selects nothing
        where.append(Message.state.in_(list(states)))
    return where


def row_count(connection: Connection, campaign_id: int, states: Collection[str] | None) -> int:
    query = select(func.count()).select_from(Message).where(*_of(campaign_id, states))
    return connection.execute(query).scalar_one()


def rows(
    connection: Connection, campaign_id: int, states: Collection[str] | None, chunk_rows: int
) -> Iterator[list[tuple]]:
    """The recipient rows (``ROW_COLUMNS``, then ``SOURCE_COLUMN``) in input order,
    ``chunk_rows`` at a time.

    Read through the driver's own cursor, in the snapshot's transaction: plain tuples, times as
    the driver gives them (text from SQLite, which pandas parses a column at a time), without a
    Row object and a parsed datetime per value, which cost a fifth of a report's time.  On
    PostgreSQL the cursor is a server-side one, so neither side holds the whole result.
    """
    query = (
        select(*(getattr(Message, name) for name in ROW_COLUMNS), Import.source)
        .outerjoin(Import, Import.id == Message.import_id)
        .where(*_of(campaign_id, states))
        .order_by(Message.row_number, Message.id)
    )
    # Inlined values: a campaign id and states checked against STATES.
    sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    driver = connection.connection.dbapi_connection
    assert driver is not None  # an open connection
    server_side = connection.dialect.name == "postgresql"
    cursor = driver.cursor("report_rows") if server_side else driver.cursor()
    try:
        cursor.execute(sql)
        while part := cursor.fetchmany(chunk_rows):
            yield list(part)
    finally:
        cursor.close()


def input_keys(connection: Connection, campaign_id: int) -> list[tuple[str, bool]]:
    """(key, holds only the raw phone) for every input column, in order of first appearance."""
    found = connection.execute(
        text(_INPUT_KEYS[connection.dialect.name]), {"campaign": campaign_id}
    )
    ordered = sorted(found, key=lambda row: (row[1], row[2]))
    return [(key, not other and bool(filled)) for key, _, _, other, filled in ordered]


def prefix_counts(
    connection: Connection, campaign_id: int
) -> Iterator[tuple[str | None, str, int]]:
    """(first digits of the phone, state, messages) of accepted messages: carrier and province
    follow from the prefix, so a few thousand look-ups cover any number of messages."""
    prefix = func.substr(Message.phone, 1, PREFIX_DIGITS)
    query = (
        select(prefix, Message.state, func.count())
        .where(Message.campaign_id == campaign_id, Message.state != INVALID)
        .group_by(prefix, Message.state)
    )
    yield from connection.execute(query)


def receipt_counts(
    connection: Connection, campaign_id: int, state: str
) -> list[tuple[int | None, str | None, int]]:
    """(code, receipt text, messages) in ``state``, most first, ties in order of first row."""
    query = (
        select(Message.error_code, Message.error_text, func.count())
        .where(*_of(campaign_id, [state]))
        .group_by(Message.error_code, Message.error_text)
        .order_by(func.count().desc(), func.min(Message.row_number))
    )
    return [(code, receipt, count) for code, receipt, count in connection.execute(query)]


def segments_in(connection: Connection, campaign_id: int, states: Collection[str]) -> int:
    query = select(func.coalesce(func.sum(Message.segments), 0)).where(*_of(campaign_id, states))
    return int(connection.execute(query).scalar_one())


def sent_span(connection: Connection, campaign_id: int) -> tuple[datetime | None, datetime | None]:
    """First and last send time (naive UTC), of every message that has one."""
    query = select(func.min(Message.sent_at), func.max(Message.sent_at)).where(
        *_of(campaign_id), Message.sent_at.is_not(None)
    )
    first, last = connection.execute(query).one()
    return _as_datetime(first), _as_datetime(last)


def _as_datetime(value: object) -> datetime | None:
    """SQLite's MIN/MAX of a DateTime column come back as text."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _epoch_seconds(connection: Connection, column: Any) -> ColumnElement[int]:
    """Whole seconds since 1970 of a naive UTC DateTime column (fractions dropped)."""
    if connection.dialect.name == "sqlite":  # stored as text; strftime would round .9996 up
        return cast(func.strftime("%s", func.substr(column, 1, 19)), Integer)
    return cast(func.floor(extract("epoch", column)), Integer)


def sent_buckets(
    connection: Connection, campaign_id: int, seconds: int, offset: int
) -> list[tuple[int, str, int]]:
    """(bucket, state, messages) sent per ``seconds``-long bucket of local time: bucket ``b``
    starts ``b * seconds`` after 1970-01-01 00:00 local, where local = UTC + ``offset`` s."""
    bucket = (_epoch_seconds(connection, Message.sent_at) + offset) // seconds
    query = (
        select(bucket, Message.state, func.count())
        .where(*_of(campaign_id), Message.sent_at.is_not(None))
        .group_by(bucket, Message.state)
    )
    return [(int(b), state, count) for b, state, count in connection.execute(query)]


def receipt_latencies(
    connection: Connection, campaign_id: int, states: Collection[str]
) -> list[tuple[str, int, int]]:
    """(state, whole seconds from send to receipt, messages), both times taken to the second."""
    seconds = _epoch_seconds(connection, Message.final_at) - _epoch_seconds(
        connection, Message.sent_at
    )
    query = (
        select(Message.state, seconds, func.count())
        .where(
            *_of(campaign_id, states), Message.sent_at.is_not(None), Message.final_at.is_not(None)
        )
        .group_by(Message.state, seconds)
    )
    return [(state, int(s), count) for state, s, count in connection.execute(query)]
