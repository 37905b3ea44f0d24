"""What a report says about the whole campaign, computed once for every format.

Every figure comes from the store's own counts (``api.status``) or from GROUP BY queries over
the campaign (``store.report_queries``): a handful of rows per state, prefix, time bucket or
latency second, whatever the campaign's size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine

from campaigns.provider.codes import describe
from campaigns.reports.carriers import (
    ABROAD,
    CARRIERS,
    breakdown_counts,
    carrier_of_prefix,
    province_of_prefix,
)
from campaigns.reports.table import local_time
from campaigns.schedule import SHANGHAI
from campaigns.store import report_queries
from campaigns.store.models import DELIVERED, SENT, STATES, UNDELIVERED

STATE_LABELS = {
    "invalid": "导入被拒 · rejected at import",
    "suppressed": "已屏蔽(退订) · suppressed",
    "pending": "待发送 · pending",
    "deferred": "延后发送 · deferred",
    "sending": "发送中 · sending",
    "sent": "待回执 · awaiting receipt",
    "failed": "发送失败 · failed",
    "delivered": "已送达 · delivered",
    "undelivered": "未送达 · undelivered",
    "expired": "回执超时 · expired",
    "cancelled": "已取消 · cancelled",
}
CHARGED_STATES = (SENT, DELIVERED, UNDELIVERED)  # accepted by the provider, so paid for
FINAL = (DELIVERED, UNDELIVERED)  # a receipt came back
# Send-rate buckets, finest first: the first that draws the campaign in at most MAX_BUCKETS bars.
BUCKETS = {
    "1s": "second", "5s": "5 seconds", "10s": "10 seconds", "30s": "30 seconds",
    "1min": "minute", "5min": "5 minutes", "10min": "10 minutes", "30min": "30 minutes",
    "1h": "hour", "6h": "6 hours", "1D": "day",
}  # fmt: skip
MAX_BUCKETS = 120
# Time from send to receipt, in bins people read at a glance: the seconds between the labels.
# Negative (the receipt's clock is a second behind ours) counts as <1s; the last bin is open.
LATENCY_EDGES = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
LATENCY_LABELS = (
    "<1s", "1–2s", "2–5s", "5–10s", "10–30s", "30s–1m",
    "1–2m", "2–5m", "5–10m", "10–30m", "30–60m", "≥1h",
)  # fmt: skip


class StatusLike(Protocol):
    """What a report needs from ``api.CampaignStatus`` (the figures ``status --json`` shows)."""

    campaign: str
    total: int
    by_state: dict[str, int]
    errors: list[tuple[str, str, int]]

    # Read-only (properties), so that a ``datetime | None`` attribute satisfies them.
    @property
    def created_at(self) -> object: ...

    @property
    def started_at(self) -> object: ...

    @property
    def finished_at(self) -> object: ...


@dataclass(frozen=True)
class StoredCampaign:
    """Where a report reads its rows: a campaign in a database."""

    engine: Engine
    campaign_id: int


@dataclass(frozen=True)
class ReportData:
    """Everything a report is made from.

    The rows are those of ``campaign``, or, when there is none, ``frame``: rows shaped like
    ``report_queries.ROW_COLUMNS`` (a library user's or a test's), reported through the same
    queries from a scratch database.  The summary, charts and carrier/province breakdown always
    describe the whole campaign; ``states`` narrows only the recipient rows written, so a retry
    list keeps its context.  ``warnings`` are those import stored with the campaign.
    """

    frame: pd.DataFrame | None
    status: StatusLike
    template: str
    states: Collection[str] | None = None
    warnings: Sequence[str] = ()
    campaign: StoredCampaign | None = None


@dataclass(frozen=True)
class Summary:
    """The whole campaign as every format shows it (computed once per report)."""

    campaign: str
    template: str
    total: int
    by_state: dict[str, int]
    errors: list[tuple[str, str, int]]  # (code or reason, meaning, count), as status shows them
    receipts: list[tuple[str, int]]  # what operators said about undelivered messages
    segments_used: int
    created_at: datetime | None  # Asia/Shanghai wall-clock time, like every time in a report
    started_at: datetime | None
    finished_at: datetime | None
    generated_at: datetime
    by_carrier: pd.DataFrame  # see carriers.breakdown
    by_province: pd.DataFrame
    send_rate: pd.DataFrame  # messages sent per bucket (rows) by current state (columns)
    send_bucket: str  # a key of BUCKETS: "1s", "10s", "1min", …
    latency: pd.DataFrame  # receipts per LATENCY_LABELS bin (rows), delivered/undelivered
    latency_quantiles: tuple[float, float] | None  # median and 90th percentile, in seconds
    rows: int  # recipient rows in this file
    scope: str  # which rows this file holds
    warnings: Sequence[str] = ()  # about the template and texts, stored at import

    @property
    def delivery_rate(self) -> float | None:
        """Delivered / (delivered + undelivered): of the receipts back, how many arrived."""
        delivered, undelivered = self.by_state[DELIVERED], self.by_state[UNDELIVERED]
        return _share(delivered, delivered + undelivered)

    @property
    def delivered_of_sent(self) -> float | None:
        """Delivered / everything the provider accepted (receipts to come count as not yet)."""
        return _share(self.by_state[DELIVERED], sum(self.by_state[s] for s in CHARGED_STATES))


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _local(stamp: object) -> datetime | None:
    if stamp is None or pd.isna(stamp):
        return None
    return local_time(pd.Series([stamp])).iloc[0].to_pydatetime()


def scope_of(states: Collection[str] | None, rejects_only: bool) -> str:
    """Which rows a file holds, in words for its reader."""
    if rejects_only:
        return "rows rejected at import, with the reason · 导入被拒的行及原因"
    if states:
        return "recipients whose state is " + ", ".join(states)
    return "all recipients · 全部收件人"


def _receipts(connection: Connection, campaign_id: int) -> list[tuple[str, int]]:
    """What operators said about undelivered messages: the provider's meaning of a code, else
    the receipt's text."""
    counts: dict[str, int] = {}
    for code, receipt, count in report_queries.receipt_counts(connection, campaign_id, UNDELIVERED):
        said = describe(int(code)).meaning if code is not None else (receipt or "")
        label = said or "(no reason given)"
        counts[label] = counts.get(label, 0) + count
    return sorted(counts.items(), key=lambda item: -item[1])


def _place(prefix: str | None) -> tuple[str, str]:
    """(carrier, province) of a number's first digits; "" for rows without a number."""
    if not prefix:
        return "", ""
    if prefix.startswith("+"):
        return ABROAD, ABROAD
    return carrier_of_prefix(prefix[:4]), province_of_prefix(prefix)


def _prefix_breakdowns(connection: Connection, campaign_id: int) -> tuple[pd.DataFrame, ...]:
    """Delivery by carrier and by province, from counts per number prefix and state."""
    carriers: Counter[tuple[str, str]] = Counter()
    provinces: Counter[tuple[str, str]] = Counter()
    for prefix, state, count in report_queries.prefix_counts(connection, campaign_id):
        carrier, province = _place(prefix)
        carriers[carrier, state] += count
        provinces[province, state] += count
    return tuple(
        breakdown_counts(
            pd.Series(counts).unstack(fill_value=0) if counts else pd.DataFrame(), order
        )
        for counts, order in ((carriers, CARRIERS), (provinces, ()))
    )


def _utc_offset() -> int:
    offset = SHANGHAI.utcoffset(datetime.now())
    assert offset is not None  # a ZoneInfo always has one
    return int(offset.total_seconds())  # +8 h: no summer time


def send_rate(connection: Connection, campaign_id: int) -> tuple[pd.DataFrame, str]:
    """Messages the provider accepted per time bucket, split by what became of them."""
    first, last = report_queries.sent_span(connection, campaign_id)
    if first is None or last is None:
        return pd.DataFrame(columns=list(CHARGED_STATES)), "1min"
    start, end = (_local(first), _local(last))
    span = pd.Timestamp(end) - pd.Timestamp(start)
    freq = next((f for f in BUCKETS if span / pd.Timedelta(f) < MAX_BUCKETS), "1D")
    seconds = int(pd.Timedelta(freq).total_seconds())
    found = pd.DataFrame(
        report_queries.sent_buckets(connection, campaign_id, seconds, _utc_offset()),
        columns=["bucket", "state", "n"],
    )
    counts = found.pivot_table("n", "bucket", "state", "sum", fill_value=0)
    counts.index = pd.to_datetime(counts.index * seconds, unit="s")
    every = pd.date_range(counts.index.min(), counts.index.max(), freq=freq)
    counts = counts.reindex(index=every, columns=list(CHARGED_STATES), fill_value=0)
    return counts.rename_axis(index=None, columns=None).astype("int64"), freq


def _quantiles(seconds: np.ndarray, weights: np.ndarray, qs: Sequence[float]) -> list[float]:
    """Quantiles (linear interpolation, as pandas computes them) of ``seconds`` repeated
    ``weights`` times, without repeating them: a million receipts are a few hundred values."""
    order = np.argsort(seconds)
    values, ends = seconds[order], np.cumsum(weights[order])
    found = []
    for q in qs:
        position = q * (ends[-1] - 1)
        below = int(np.floor(position))
        low = values[np.searchsorted(ends, below, side="right")]
        high = values[np.searchsorted(ends, min(below + 1, ends[-1] - 1), side="right")]
        found.append(float(low + (position - below) * (high - low)))
    return found


def latency(
    connection: Connection, campaign_id: int
) -> tuple[pd.DataFrame, tuple[float, float] | None]:
    """Receipts per send-to-receipt time bin (delivered, undelivered); median and p90 seconds."""
    found = pd.DataFrame(
        report_queries.receipt_latencies(connection, campaign_id, FINAL),
        columns=["state", "seconds", "n"],
    )
    bins = np.searchsorted(LATENCY_EDGES, found["seconds"].to_numpy(), side="right")
    counts = pd.DataFrame(
        {
            s: np.bincount(
                bins[(found["state"] == s).to_numpy()],
                weights=found.loc[found["state"] == s, "n"].to_numpy(),
                minlength=len(LATENCY_LABELS),
            ).astype("int64")
            for s in FINAL
        },
        index=list(LATENCY_LABELS),
    )
    seen = np.flatnonzero(counts.sum(axis=1).to_numpy())
    if not len(seen):
        return counts.iloc[:0], None
    clipped = found["seconds"].clip(lower=0).to_numpy()
    median, p90 = _quantiles(clipped, found["n"].to_numpy(), (0.5, 0.9))
    return counts.iloc[: seen[-1] + 1], (median, p90)


def summarise(
    data: ReportData, connection: Connection, campaign_id: int, rows: int, scope: str
) -> Summary:
    """Figures from ``status`` (so they equal ``status --json``) plus the campaign's own counts."""
    status = data.status
    rate, bucket = send_rate(connection, campaign_id)
    receipt_times, quantiles = latency(connection, campaign_id)
    by_carrier, by_province = _prefix_breakdowns(connection, campaign_id)
    return Summary(
        campaign=status.campaign,
        template=data.template,
        total=status.total,
        by_state={name: int(status.by_state.get(name, 0)) for name in STATES},
        errors=list(status.errors),
        receipts=_receipts(connection, campaign_id),
        segments_used=report_queries.segments_in(connection, campaign_id, CHARGED_STATES),
        created_at=_local(status.created_at),
        started_at=_local(status.started_at),
        finished_at=_local(status.finished_at),
        generated_at=datetime.now(SHANGHAI).replace(tzinfo=None),
        by_carrier=by_carrier,
        by_province=by_province,
        send_rate=rate,
        send_bucket=bucket,
        latency=receipt_times,
        latency_quantiles=quantiles,
        rows=rows,
        scope=scope,
        warnings=list(data.warnings),
    )
