"""The SQL of import: the campaign and its import records, the numbers a campaign already has,
and a bulk insert fast enough for a million messages."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from itertools import chain, repeat
from typing import Any

import pyarrow as pa
from sqlalchemy import Dialect, select
from sqlalchemy.orm import Session

from campaigns.errors import UserError
from campaigns.store.models import INVALID, STATES, Campaign, Import, Message, Suppression

ACCEPTED_STATES = tuple(state for state in STATES if state != INVALID)
PARTITION_ROWS = 200_000  # numbers fetched at a time from an existing campaign
ROWS_PER_STATEMENT = 500  # rows in one INSERT ... VALUES (...), (...): ~7,000 parameters


def campaign_for_import(session: Session, name: str, *, lock: bool) -> Campaign | None:
    """The campaign; with ``lock``, locked on PostgreSQL until the import commits, so that two
    imports into it take turns (SQLite lets one writer in at a time anyway)."""
    query = select(Campaign).where(Campaign.name == name)
    return session.scalar(query.with_for_update() if lock else query)


CAMPAIGN_NAME_MAX = 200  # the column's size, which SQLite does not enforce by itself


def check_campaign_name(name: str) -> str:
    """A name that every command can print and type back: ``send NAME`` hints must work."""
    if not name or name != name.strip():
        raise UserError(f"campaign name {name!r}: give a name without leading or trailing spaces")
    if len(name) > CAMPAIGN_NAME_MAX:
        raise UserError(
            f"campaign name is {len(name)} characters long: at most {CAMPAIGN_NAME_MAX}"
        )
    control = next((c for c in name if unicodedata.category(c) in ("Cc", "Cf")), None)
    if control is not None:
        raise UserError(
            f"campaign name {name!r} holds the control character U+{ord(control):04X}: "
            "use letters, digits, spaces and punctuation only"
        )
    return name


def create_campaign(session: Session, **values: Any) -> Campaign:
    check_campaign_name(values["name"])
    campaign = Campaign(**values)
    session.add(campaign)
    session.flush()  # its id, before messages refer to it
    return campaign


def find_import(session: Session, campaign_id: int, sha256: str) -> Import | None:
    return session.scalar(
        select(Import).where(Import.campaign_id == campaign_id, Import.sha256 == sha256)
    )


def start_import(session: Session, **values: Any) -> Import:
    """The file's import record, made before its rows so that each message names it."""
    record = Import(rows=0, accepted=0, **values)
    session.add(record)
    session.flush()  # its id
    return record


def earlier_imports(session: Session, campaign_id: int) -> list[str]:
    """The files imported into the campaign before, oldest first."""
    query = select(Import.source).where(Import.campaign_id == campaign_id).order_by(Import.id)
    return list(session.scalars(query))


def accepted_phones(session: Session, campaign_id: int) -> Iterator[tuple[list[str], list[int]]]:
    """(numbers, row numbers) of the campaign's accepted messages, PARTITION_ROWS at a time."""
    result = session.execute(
        select(Message.phone, Message.row_number)
        .where(Message.campaign_id == campaign_id, Message.state.in_(ACCEPTED_STATES))
        .execution_options(yield_per=PARTITION_ROWS)
    )
    for part in result.partitions():
        phones, rows = zip(*part, strict=True)
        yield list(phones), list(rows)


class MessageInsert:
    """Many messages in few statements: ROWS_PER_STATEMENT rows to an INSERT ... VALUES, sent
    through the driver's executemany.

    ``prepare`` turns rows into statements and parameters, CPU work that may run on another
    thread while the previous chunk is written; ``execute`` writes them.  The ORM, or Core
    with a dict per row, took three times as long for a million rows, one row per statement
    15 % longer, and converting on the writing thread another 15 %.  500 rows a statement
    took 15-30 % less SQLite CPU than 50 (1M rows, 13 columns); 1,000-2,000 no less than 500.
    """

    def __init__(self, dialect: Dialect, constants: dict[str, Any]) -> None:
        """``constants`` (column: value for every row) go through their column type once (a
        datetime becomes SQLite's text form); per-row values must be what the driver takes as
        they are (text, integers, nulls)."""
        table = Message.__table__
        self.marker = "?" if dialect.paramstyle == "qmark" else "%s"
        self.max_parameters = _max_parameters(dialect)
        self.constants = {}
        for name, value in constants.items():
            process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            self.constants[name] = process(value) if process else value

    def prepare(self, rows: pa.Table) -> list[tuple[str, list[tuple]]]:
        """(statement, parameter tuples) pairs inserting one message per row of ``rows``, whose
        columns are named as Message's."""
        names = [*rows.column_names, *self.constants]
        values = f"({', '.join([self.marker] * len(names))})"
        insert = f"INSERT INTO {Message.__tablename__} ({', '.join(names)}) VALUES "
        columns = [column.to_pylist() for column in rows.columns]
        tuples = list(zip(*columns, *map(repeat, self.constants.values()), strict=False))
        per_statement = max(1, min(ROWS_PER_STATEMENT, self.max_parameters // len(names)))
        whole = len(tuples) - len(tuples) % per_statement
        flat = list(chain.from_iterable(tuples[:whole]))
        width = per_statement * len(names)
        return [
            (
                insert + ", ".join([values] * per_statement),
                [tuple(flat[i : i + width]) for i in range(0, len(flat), width)],
            ),
            (insert + values, tuples[whole:]),
        ]

    @staticmethod
    def execute(session: Session, prepared: list[tuple[str, list[tuple]]]) -> None:
        connection = session.connection()
        for statement, parameters in prepared:
            if parameters:
                connection.exec_driver_sql(statement, parameters)


def _max_parameters(dialect: Dialect) -> int:
    """Bound parameters one statement may hold: 999 in SQLite before 3.32 (still the system
    library of Ubuntu 20.04), 32,766 after; PostgreSQL's protocol allows 65,535."""
    if dialect.name == "sqlite":
        version = getattr(dialect.dbapi, "sqlite_version_info", (0,))
        return 32_766 if version >= (3, 32) else 999
    return 65_535


def suppressed_phones(session: Session) -> set[str]:
    """The suppression list: these numbers are imported as ``suppressed``, never sent."""
    return set(session.scalars(select(Suppression.phone)))
