"""Carrier and province of each mainland mobile number, and delivery broken down by them.

Operations staff first ask "is it one carrier or one province?".  The answer comes from the number
itself (libphonenumber's carrier and geocoder data in ``phonenumbers``), looked up once per number
prefix (号段): the carrier data goes 4 digits deep and the geocoder 7, so a million rows cost a few
thousand look-ups instead of a million.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import pandas as pd
import phonenumbers
from phonenumbers import carrier, geocoder

from campaigns.store.models import DELIVERED, FAILED, INVALID, UNDELIVERED

VIRTUAL = "虚拟运营商"
ABROAD = "境外"  # an international number (E.164, "+44…"), when import was allowed to take them
UNKNOWN = "未知"
# Virtual operators (MVNOs) resell the big three's networks under their own number ranges;
# phonenumbers names the host network for some of them and nothing for others.
VIRTUAL_PREFIXES = ("162", "165", "167", "170", "171")
CARRIERS = ("中国移动", "中国联通", "中国电信", "中国广电", VIRTUAL, ABROAD, UNKNOWN)
# Short names as people say them (the geocoder says 广东省深圳市, 广西壮族自治区南宁市, 北京市).
PROVINCES = frozenset({
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江",
    "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州",
    "云南", "陕西", "甘肃", "青海", "内蒙古", "广西", "西藏", "宁夏", "新疆",
})  # fmt: skip


def _number(digits: str) -> phonenumbers.PhoneNumber:
    return phonenumbers.PhoneNumber(country_code=86, national_number=int(digits.ljust(11, "0")))


@cache
def carrier_of_prefix(prefix: str) -> str:
    """The carrier group for a number's first 4 digits."""
    if prefix.startswith(VIRTUAL_PREFIXES):
        return VIRTUAL
    return carrier.name_for_number(_number(prefix), "zh") or UNKNOWN


@cache
def province_of_prefix(prefix: str) -> str:
    """The province (short name) for a number's first 7 digits."""
    # Import validated every number already; the "valid" variant skips a costly re-validation.
    place = geocoder.description_for_valid_number(_number(prefix), "zh")
    short = place[:3] if place[:3] in PROVINCES else place[:2]
    return short if short in PROVINCES else UNKNOWN


def _by_prefix(phones: pd.Series, digits: int, lookup: Callable[[str], str]) -> pd.Series:
    """``lookup`` applied to each distinct mainland prefix only; "" where there is no number."""
    abroad = phones.str.startswith("+").fillna(False).astype(bool)
    codes, prefixes = pd.factorize(phones.str.slice(0, digits).mask(abroad, "+"))
    found = [ABROAD if prefix == "+" else lookup(prefix) for prefix in prefixes]
    names = np.array([*found, ""], dtype=object)
    return pd.Series(names[codes], index=phones.index, dtype="str")  # code -1 (no number) → ""


def carriers(phones: pd.Series) -> pd.Series:
    """中国移动 / 中国联通 / 中国电信 / 中国广电 / 虚拟运营商 / 境外 / 未知 per accepted number."""
    return _by_prefix(phones, 4, carrier_of_prefix)


def provinces(phones: pd.Series) -> pd.Series:
    """Province short name (北京, 广东, …, 境外, 未知) per accepted number."""
    return _by_prefix(phones, 7, province_of_prefix)


def breakdown(groups: pd.Series, state: pd.Series, order: tuple[str, ...] = ()) -> pd.DataFrame:
    """Outcomes per group of accepted messages (rows rejected at import have no carrier)."""
    accepted = state != INVALID
    return breakdown_counts(pd.crosstab(groups[accepted], state[accepted]), order)


def breakdown_counts(counts: pd.DataFrame, order: tuple[str, ...] = ()) -> pd.DataFrame:
    """Outcomes per group from messages per group (rows) and state (columns).

    ``delivery_rate`` is delivered / (delivered + undelivered): of the receipts, how many arrived.
    ``failure_rate`` is (failed + undelivered) / messages: of everything we tried, what was lost.
    Known ``order`` first, then the rest by number of failures.
    """
    table = pd.DataFrame(index=counts.index.rename(None))
    table["messages"] = counts.sum(axis=1)
    for column in (DELIVERED, UNDELIVERED, FAILED):
        table[column] = counts.get(column, 0)
    table["awaiting"] = table["messages"] - table[[DELIVERED, UNDELIVERED, FAILED]].sum(axis=1)
    receipts = table[DELIVERED] + table[UNDELIVERED]
    table["delivery_rate"] = (table[DELIVERED] / receipts).where(receipts > 0)
    lost = table[FAILED] + table[UNDELIVERED]
    table["failure_rate"] = lost / table["messages"]
    rank = pd.Series(range(len(order)), index=list(order)).reindex(table.index)
    ordered = pd.DataFrame({"rank": rank, "lost": -lost, "messages": -table["messages"]})
    return table.loc[ordered.sort_values(["rank", "lost", "messages"]).index]
