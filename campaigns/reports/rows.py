"""The recipient rows of a report, read from one database snapshot a chunk at a time.

A writer asks for ``columns`` (header first), then iterates ``chunks()``: report tables of at most
``CHUNK_ROWS`` rows, in input order.  Memory stays flat whatever the campaign's size.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from functools import cached_property

import pandas as pd
from sqlalchemy import Connection, Engine, create_engine, insert
from sqlalchemy.pool import StaticPool

from campaigns.reports.table import input_titles, rejects_table, report_table, table_columns
from campaigns.store import report_queries
from campaigns.store.models import INVALID, Base, Message

CHUNK_ROWS = 10_000  # rows read, converted and written at a time: more costs memory, not time
Progress = Callable[[int, int], None]  # (rows written, rows in the file)


def chosen_states(states: Collection[str] | None, rejects_only: bool) -> list[str] | None:
    """The states whose rows the file holds; None for all of them."""
    if rejects_only:
        return [INVALID] if states is None or INVALID in states else []
    return list(states) if states else None


@dataclass
class Rows:
    """The rows one report file holds (``states``: None for all), from ``connection``."""

    connection: Connection
    campaign_id: int
    states: list[str] | None
    rejects_only: bool = False
    mask: bool = False
    on_progress: Progress | None = None

    @cached_property
    def count(self) -> int:
        return report_queries.row_count(self.connection, self.campaign_id, self.states)

    @cached_property
    def inputs(self) -> dict[str, str]:
        """The input file's columns, the same for every chunk: those of the whole campaign."""
        return input_titles(report_queries.input_keys(self.connection, self.campaign_id))

    @property
    def columns(self) -> list[str]:
        return table_columns(self.inputs, rejects_only=self.rejects_only)

    def chunks(self) -> Iterator[pd.DataFrame]:
        done = 0
        size = CHUNK_ROWS
        for part in report_queries.rows(self.connection, self.campaign_id, self.states, size):
            columns = [*report_queries.ROW_COLUMNS, report_queries.SOURCE_COLUMN]
            frame = pd.DataFrame(part, columns=columns)
            table = report_table(frame, mask=self.mask, inputs=self.inputs)
            yield rejects_table(table) if self.rejects_only else table
            done += len(part)
            if self.on_progress:
                self.on_progress(done, self.count)


def scratch_campaign(frame: pd.DataFrame) -> tuple[Engine, int]:
    """An in-memory database holding ``frame`` as campaign 1's messages, so that rows given as a
    frame are reported by exactly the queries a stored campaign is."""
    engine = create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    stored = [name for name in frame.columns if name in Message.__table__.columns]
    records = frame[stored].astype(object).where(frame[stored].notna(), None)
    messages = [{"campaign_id": 1, **row} for row in records.to_dict("records")]
    if messages:
        with engine.begin() as connection:
            connection.execute(insert(Message), messages)
    return engine, 1
