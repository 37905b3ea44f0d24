"""Import: read a recipients file, validate and render every row, store it as one transaction.

Every row is stored: accepted rows as ``pending`` messages with a messageId, rejected rows as
``invalid`` with a reason code and a plain-English explanation.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from campaigns import ids
from campaigns.errors import UserError
from campaigns.intake.phones import REASONS as PHONE_REASONS
from campaigns.intake.phones import normalise_phones
from campaigns.intake.read import read_recipients
from campaigns.intake.render import REASONS as RENDER_REASONS
from campaigns.intake.render import render, too_long, utf16_lengths
from campaigns.store import queries
from campaigns.store.db import Store
from campaigns.store.models import INVALID, PENDING, Campaign

REASONS = {**PHONE_REASONS, **RENDER_REASONS}


@dataclass
class ImportSummary:
    campaign: str
    source: str
    rows: int
    accepted: int
    rejected: dict[str, int] = field(default_factory=dict)
    segments: int = 0
    largest: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def _rejection_reasons(
    frame: pd.DataFrame, phone_reason: pd.Series, render_reason: pd.Series, content: pd.Series
) -> pd.Series:
    """The first reason each row fails for ("" when it is fine), in the order a user fixes them."""
    reason = phone_reason.where(phone_reason != "", render_reason)
    return reason.where(reason != "", too_long(content).map({True: "too_long", False: ""}))


def _mark_duplicates(
    phone: pd.Series, reason: pd.Series, rows: pd.Series, earlier: dict[str, int]
) -> tuple[pd.Series, pd.Series]:
    """Reject a number already in the campaign or on an earlier row; say which row has it."""
    valid = reason == ""
    first_row = rows[valid].groupby(phone[valid]).transform("min")
    in_file = valid & (rows != first_row.reindex(rows.index))
    before = valid & phone.isin(earlier.keys())
    duplicate = in_file | before
    first_seen = phone.map(earlier).where(before, first_row.reindex(rows.index))
    detail = ("same number as row " + first_seen.astype("Int64").astype(str)).where(duplicate, "")
    return reason.mask(duplicate, "duplicate"), detail


def import_file(
    store: Store,
    path: str | Path,
    *,
    campaign: str,
    message: str,
    phone_column: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
) -> ImportSummary:
    """Read, validate and store a recipients file as campaign ``campaign``, in one transaction."""
    recipients = read_recipients(path, phone_column=phone_column, encoding=encoding, sheet=sheet)
    frame = recipients.frame
    content, render_reason = render(message, frame)
    phone, phone_reason = normalise_phones(frame[recipients.phone_column])
    reason = _rejection_reasons(frame, phone_reason, render_reason, content)
    rows = pd.Series(recipients.row_numbers, index=frame.index).astype("int64")
    with store.session.begin() as session:
        target = _campaign_for_import(session, campaign, message, recipients.source)
        earlier = queries.existing_phones(session, target.id)
        reason, detail = _mark_duplicates(phone, reason, rows, earlier)
        accepted = reason == ""
        first_sequence = queries.accepted_count(session, target.id) + 1
        table = pd.DataFrame(
            {
                "campaign_id": target.id,
                "row_number": rows,
                "raw_phone": frame[recipients.phone_column].astype(object),
                "phone": phone.where(accepted, None).astype(object),
                "content": content.where(accepted, "").astype(object),
                "segments": segments_of(content).where(accepted, 0).astype("int64"),
                "state": accepted.map({True: PENDING, False: INVALID}),
                "reason": reason.where(~accepted, None).astype(object),
                "error_text": _reason_text(reason, detail).where(~accepted, None).astype(object),
                "attempts": 0,
                "fields": frame.to_json(
                    orient="records", lines=True, force_ascii=False
                ).splitlines(),
                "queued_at": queries.utcnow(),
                "message_id": None,
            }
        )
        table.loc[accepted, "message_id"] = ids.message_ids(
            target.token, first_sequence, int(accepted.sum())
        ).to_numpy()
        queries.insert_messages(session, table.to_dict("records"))
    counted = Counter(reason[~accepted])
    return ImportSummary(
        campaign=campaign,
        source=recipients.source,
        rows=len(frame),
        accepted=int(accepted.sum()),
        rejected=dict(counted.most_common()),
        segments=int(table["segments"].sum()),
        largest=int(segments_of(content[accepted]).max()) if accepted.any() else 0,
    )


def segments_of(content: pd.Series) -> pd.Series:
    """SMS segments per message: 1 up to 70 UTF-16 units, else 67 units per part (vectorised)."""
    units = utf16_lengths(content)
    parts = -(-units // 67)
    return parts.where(units > 70, (units > 0).astype("int64")).astype("int64")


def _reason_text(reason: pd.Series, detail: pd.Series) -> pd.Series:
    text = reason.map(lambda code: REASONS.get(code.split(":")[0], code) if code else "")
    return text.where(detail == "", text + " (" + detail + ")")


def _campaign_for_import(session, name: str, message: str, source: str) -> Campaign:
    existing = queries.get_campaign(session, name)
    if existing is None:
        campaign = Campaign(
            name=name,
            token=ids.new_campaign_token(),
            template=message,
            source=source,
            created_at=queries.utcnow(),
        )
        session.add(campaign)
        session.flush()
        return campaign
    if existing.template != message:
        raise UserError(
            f"campaign {name!r} already exists with another message template; "
            "use a new campaign name or the same --message"
        )
    return existing
