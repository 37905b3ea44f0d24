"""messageIds: unique across campaigns and databases, stable across resumes.

A campaign gets a random 12-hex-digit token when it is created; its messages are
``<token>-<sequence>`` where the sequence is the message's 1-based position in the campaign.
The id is assigned at import and never changes, so a crash or a resume looks the same message up
under the same id. A second database sending through the same account draws another token: a
collision needs the same 48-bit token, about one in 10^14 for two campaigns.
"""

from __future__ import annotations

import secrets

import pandas as pd


def new_campaign_token() -> str:
    return secrets.token_hex(6)


def message_ids(token: str, first_sequence: int, count: int) -> pd.Series:
    """Ids for ``count`` new messages, numbered on from ``first_sequence`` (vectorised)."""
    numbers = pd.RangeIndex(first_sequence, first_sequence + count).astype(str).str.zfill(7)
    return pd.Series(token + "-" + numbers, dtype=object)
