"""SeenNumbers against a dict: the same answers, whatever the keys, batches and merges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.intake.seen import SeenNumbers

# mainland numbers straddle a 2**32 boundary; E.164 keys are negative; plus the extremes
KEYS = st.one_of(
    st.integers(13_000_000_000, 19_999_999_999),
    st.integers(-999_999_999_999_999, -1_000_000),
    st.sampled_from([0, 2**32 - 1, 2**32, -(2**32), -1, 2**63 - 1, -(2**63)]),
)


@pytest.mark.parametrize("merge_limit", [1 << 18, 3])
@given(batches=st.lists(st.lists(KEYS, max_size=40), max_size=12), queries=st.lists(KEYS))
@settings(max_examples=60, deadline=None)
def test_rows_of_matches_a_dict(
    merge_limit: int, batches: list[list[int]], queries: list[int]
) -> None:
    model: dict[int, int] = {}
    row = 1
    with SeenNumbers() as seen:
        seen.MERGE_LIMIT = merge_limit
        for batch in batches:
            new = sorted(set(batch) - model.keys())
            rows = np.arange(row, row + len(new))
            seen.add(np.array(new, dtype=np.int64), rows)
            model.update(zip(new, rows.tolist(), strict=True))
            row += len(new) + 7
            asked = np.array(sorted(queries + batch), dtype=np.int64)
            assert seen.rows_of(asked).tolist() == [model.get(k, 0) for k in asked.tolist()]
        assert seen.count == len(model)


def test_memory_is_four_bytes_a_number() -> None:
    with SeenNumbers() as seen:
        keys = np.arange(13_800_000_000, 13_800_000_000 + 7 * 100_000, 7, dtype=np.int64)
        for part in np.split(keys, 10):
            seen.add(part, np.arange(len(part)) + 2)
        held = sum(run.low.nbytes for runs in seen.buckets.values() for run in runs)
        assert held == 4 * len(keys)
        assert seen.rows_of(keys[[0, -1]]).tolist() == [2, 10_001]
