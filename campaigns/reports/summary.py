"""What a report says about the whole campaign, computed once for every format."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import numpy as np
import pandas as pd

from campaigns.reports.carriers import CARRIERS, breakdown
from campaigns.reports.table import local_time
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
    created_at: object
    started_at: object
    finished_at: object


@dataclass(frozen=True)
class ReportData:
    """Everything a report is made from.

    ``frame`` holds *all* the campaign's rows (``queries.report_frame`` without a state filter):
    the summary, charts and carrier/province breakdown always describe the whole campaign, and
    ``states`` narrows only the recipient rows written, so a retry list keeps its context.
    """

    frame: pd.DataFrame
    status: StatusLike
    template: str
    states: Collection[str] | None = None


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


def send_rate(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Messages the provider accepted per time bucket, split by what became of them."""
    sent = table["sent"].dropna()
    if sent.empty:
        return pd.DataFrame(columns=list(CHARGED_STATES)), "1min"
    span = sent.max() - sent.min()
    freq = next((f for f in BUCKETS if span / pd.Timedelta(f) < MAX_BUCKETS), "1D")
    buckets = sent.dt.floor(freq)
    counts = pd.crosstab(buckets, table.loc[sent.index, "state"])
    every = pd.date_range(buckets.min(), buckets.max(), freq=freq)
    counts = counts.reindex(index=every, columns=list(CHARGED_STATES), fill_value=0)
    return counts.rename_axis(index=None, columns=None), freq


def latency(table: pd.DataFrame) -> tuple[pd.DataFrame, tuple[float, float] | None]:
    """Receipts per send-to-receipt time bin (delivered, undelivered); median and p90 seconds."""
    final = table[table["state"].isin(FINAL)]
    seconds = (final["delivered/undelivered"] - final["sent"]).dt.total_seconds().dropna()
    bins = np.searchsorted(LATENCY_EDGES, seconds.to_numpy(), side="right")
    state = final.loc[seconds.index, "state"].to_numpy()
    counts = pd.DataFrame(
        {s: np.bincount(bins[state == s], minlength=len(LATENCY_LABELS)) for s in FINAL},
        index=list(LATENCY_LABELS),
    )
    seen = np.flatnonzero(counts.sum(axis=1).to_numpy())
    if not len(seen):
        return counts.iloc[:0], None
    median, p90 = seconds.clip(lower=0).quantile([0.5, 0.9]).tolist()
    return counts.iloc[: seen[-1] + 1], (median, p90)


def summarise(data: ReportData, table: pd.DataFrame, rows: int, scope: str) -> Summary:
    """Figures from ``status`` (so they equal ``status --json``) plus what only the rows tell."""
    status = data.status
    state = table["state"]
    undelivered = table.loc[state == UNDELIVERED, "error_text"].replace("", "(no reason given)")
    rate, bucket = send_rate(table)
    receipt_times, quantiles = latency(table)
    return Summary(
        campaign=status.campaign,
        template=data.template,
        total=status.total,
        by_state={name: int(status.by_state.get(name, 0)) for name in STATES},
        errors=list(status.errors),
        receipts=list(undelivered.value_counts().items()),
        segments_used=int(table.loc[state.isin(CHARGED_STATES), "segments"].sum()),
        created_at=_local(status.created_at),
        started_at=_local(status.started_at),
        finished_at=_local(status.finished_at),
        generated_at=_local(datetime.now(UTC).replace(tzinfo=None)),
        by_carrier=breakdown(table["carrier"], state, CARRIERS),
        by_province=breakdown(table["province"], state),
        send_rate=rate,
        send_bucket=bucket,
        latency=receipt_times,
        latency_quantiles=quantiles,
        rows=rows,
        scope=scope,
    )
