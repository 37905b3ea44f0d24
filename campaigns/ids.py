"""messageIds: unique across campaigns and databases, stable across resumes.

A campaign gets a random 12-hex-digit token when it is created; its messages are
``<token>-<sequence>`` where the sequence is the message's 1-based position in the campaign.
The id is assigned at import and never changes while the message is being sent, so a crash or a
resume looks the same message up under the same id. A second database sending through the same
account draws another token: a collision needs the same 48-bit token, about one in 10^14 for two
campaigns.

Two ids are made later, and only here:

- ``retry`` gives a message that failed or was undelivered ``<id>-r<n>`` (n = 1, 2, ...): a
  message is never sent again under an id the provider already has, or its lookups would answer
  for the old attempt.
- A test send to an operator's phone is ``<token>-t<n>``, numbered per campaign.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

_RETRY = "-r"


def new_campaign_token() -> str:
    import secrets  # here: it loads hashlib (~3 ms), which only import needs

    return secrets.token_hex(6)


def message_ids(token: str, first_sequence: int, count: int) -> pd.Series:
    """Ids for ``count`` new messages, numbered on from ``first_sequence`` (vectorised)."""
    import pandas as pd  # here: sending and the controls make ids without loading pandas

    numbers = pd.RangeIndex(first_sequence, first_sequence + count).astype(str).str.zfill(7)
    return pd.Series(token + "-" + numbers, dtype=object)


def retry_id(message_id: str, attempt: int) -> str:
    """The id of a message's ``attempt``-th retry (1-based), from its current id."""
    return f"{message_id.split(_RETRY)[0]}{_RETRY}{attempt}"


def id_for_test_send(token: str, number: int) -> str:
    """The id of a campaign's ``number``-th test send (1-based)."""
    return f"{token}-t{number}"
