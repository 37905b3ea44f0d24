"""The store's reads and writes, one module per stage; this one keeps the report's rows.

    campaign_queries  campaign rows, counts by state, errors by code (every stage)
    intake_queries    import: new campaigns, bulk inserts, duplicates
    send_queries      claims, leases, the shared rate bucket, screening, reconcile's pages
    outcomes          Outcome and the one batched write of outcomes (send and reconcile)
    control_queries   cancel, suppression list, retry, test sends
    report_queries    what a report reads

Only ``report_frame`` is left here: a whole campaign as one DataFrame, which the report tests
compare reports with (reports themselves stream through ``report_queries``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from campaigns.store.db import Store
from campaigns.store.models import Message

# -- reports ----

REPORT_COLUMNS = (
    "row_number",
    "raw_phone",
    "phone",
    "message_id",
    "state",
    "reason",
    "error_code",
    "error_text",
    "attempts",
    "segments",
    "content",
    "fields",
    "queued_at",
    "sent_at",
    "final_at",
)


def report_frame(store: Store, campaign_id: int, states: Sequence[str] | None = None) -> Any:
    """The report's rows as a pandas DataFrame (pandas loads only when a report is made)."""
    import pandas as pd

    columns = [getattr(Message, name) for name in REPORT_COLUMNS]
    query = (
        select(*columns)
        .where(Message.campaign_id == campaign_id)
        .order_by(Message.row_number, Message.id)
    )
    if states:
        query = query.where(Message.state.in_(states))
    with store.session() as session:
        rows = session.execute(query).all()
    return pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
