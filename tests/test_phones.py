"""Phone normalisation: each rule by example, agreement with phonenumbers, and properties."""

from __future__ import annotations

import random
import unicodedata

import pandas as pd
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.intake.phones import REASONS, normalise_phones

MOBILE_TYPES = (
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
)
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def oracle(number: str) -> bool:
    """phonenumbers' verdict: a valid mainland mobile number."""
    try:  # CN's dialling-out prefixes (like 17951xx00) make some 1xx strings unparseable
        parsed = phonenumbers.parse(number, "CN")
    except phonenumbers.NumberParseException:
        return False
    valid = phonenumbers.is_valid_number_for_region(parsed, "CN")
    return valid and phonenumbers.number_type(parsed) in MOBILE_TYPES


def normalise(values: list) -> list[tuple[str, str]]:
    phone, reason = normalise_phones(pd.Series(values, dtype=object))
    return list(zip(phone, reason, strict=True))


@pytest.mark.parametrize(
    ("raw", "phone", "reason"),
    [
        ("13800138000", "13800138000", ""),
        ("  13800138000\t", "13800138000", ""),
        ("138 0013 8000", "13800138000", ""),
        ("138-0013-8000", "13800138000", ""),
        ("138.0013.8000", "13800138000", ""),
        ("(138)00138000", "13800138000", ""),
        ("13800138000.0", "13800138000", ""),
        ("+86 138-0013-8000", "13800138000", ""),
        ("(+86) 13800138000", "13800138000", ""),
        ("0086 13800138000", "13800138000", ""),
        ("8613800138000", "13800138000", ""),
        ("86 138 0013 8000", "13800138000", ""),
        ("１３８００１３８０００", "13800138000", ""),
        ("＋８６　１３８－００１３－８０００", "13800138000", ""),
        ("'13800138000", "13800138000", ""),
        ('="13800138000"', "13800138000", ""),
        ("138\u200b00138000", "13800138000", ""),
        ("138—0013—8000", "13800138000", ""),
        ("", "", "empty"),
        ("   ", "", "empty"),
        (None, "", "empty"),
        (float("nan"), "", "empty"),
        ("1.38001E+10", "", "excel_scientific"),
        ("1.38001e10", "", "excel_scientific"),
        ("abc", "", "not_a_number"),
        ("138001380O0", "", "not_a_number"),
        ("13800138000/13900139000", "", "not_a_number"),
        ("无", "", "not_a_number"),
        ("1380013800", "", "wrong_length"),
        ("138001380001", "", "wrong_length"),
        ("13800138000 13900139000", "", "wrong_length"),
        ("861380013800", "", "wrong_length"),
        ("010-12345678", "", "landline"),
        ("0755 1234567", "", "landline"),
        ("0571-88886666", "", "landline"),
        ("+86 10 1234 5678", "", "wrong_length"),
        ("+86 010 12345678", "", "landline"),
        ("+44 20 7946 0958", "", "international"),
        ("00447911123456", "", "international"),
        ("+1 415 555 0100", "", "international"),
        ("12345678901", "", "not_mobile"),
        ("10012345678", "", "not_mobile"),
    ],
)
def test_examples(raw: object, phone: str, reason: str) -> None:
    assert normalise([raw]) == [(phone, reason)]


def test_numeric_input_and_index_are_kept() -> None:
    raw = pd.Series([13800138000, 13800138000.0], index=[7, 3])
    phone, reason = normalise_phones(raw)
    assert phone.to_dict() == {7: "13800138000", 3: "13800138000"}
    assert reason.to_dict() == {7: "", 3: ""}


def test_every_reason_is_explained() -> None:
    _, reason = normalise_phones(
        pd.Series(["", "1.38001E+10", "x", "1", "010-12345678", "+4420", "12345678901"])
    )
    assert set(reason) | {"duplicate"} == set(REASONS)
    assert len(set(REASONS.values())) == len(REASONS)


def test_agrees_with_phonenumbers_on_every_prefix() -> None:
    rng = random.Random(86)
    numbers = [
        f"{prefix}{rng.randrange(10**7):07d}" for prefix in range(1000, 2000) for _ in range(25)
    ]
    phone, _ = normalise_phones(pd.Series(numbers))
    ours = phone != ""
    disagreements = [
        (number, bool(mine))
        for number, mine in zip(numbers, ours, strict=True)
        if mine != oracle(number)
    ]
    assert 0.3 < ours.mean() < 0.7  # both verdicts are well represented
    assert len(disagreements) <= len(numbers) * 0.001, f"(number, ours): {disagreements[:50]}"


valid_numbers = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True).filter(oracle)
separators = st.sampled_from(["", " ", "-", ".", "—", "\u3000"])


@st.composite
def written(draw: st.DrawFn) -> tuple[str, str]:
    """(a valid number, the way someone might have typed it)."""
    number = draw(valid_numbers)
    cut = draw(st.sampled_from([(3, 7), (3, 8), (4, 8)]))
    sep = draw(separators)
    text = number[: cut[0]] + sep + number[cut[0] : cut[1]] + sep + number[cut[1] :]
    text = draw(st.sampled_from(["", "+86 ", "+86", "0086", "86", "(+86)"])) + text
    if draw(st.booleans()):
        text = text.translate(FULL_WIDTH)
    return number, draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " "]))


@settings(max_examples=60, deadline=None)
@given(st.lists(written(), min_size=1, max_size=40))
def test_written_numbers_come_back_unchanged(cases: list[tuple[str, str]]) -> None:
    numbers, texts = zip(*cases, strict=True)
    assert [phone for phone, _ in normalise(list(texts))] == list(numbers)


messy_text = st.text(alphabet="0123456789１３８+-. ()Ee86０", max_size=18)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(messy_text, valid_numbers), min_size=1, max_size=40))
def test_accepted_numbers_are_fixed_points_taken_from_the_input(texts: list[str]) -> None:
    results = normalise(texts)
    accepted = [phone for phone, _ in results if phone]
    assert normalise(accepted) == [(phone, "") for phone in accepted]
    for text, (phone, _) in zip(texts, results, strict=True):
        digits = "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isdigit())
        assert phone == "" or phone in digits
        if oracle_safe(text):
            assert phone == text


def oracle_safe(text: str) -> bool:
    """A bare 11-digit valid number, which must never become another number."""
    return len(text) == 11 and text.isascii() and text.isdigit() and oracle(text)
