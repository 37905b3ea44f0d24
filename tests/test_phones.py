"""Phone normalisation: each rule by example, agreement with phonenumbers, and properties."""

from __future__ import annotations

import random
import re
import unicodedata

import pandas as pd
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.intake.phones import MOBILE_TYPES, REASONS, normalise_phones, phone_keys

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def oracle(number: str) -> bool:
    """phonenumbers' verdict: a valid mainland mobile number."""
    try:  # CN's dialling-out prefixes (like 17951xx00) make some 1xx strings unparseable
        parsed = phonenumbers.parse(number, "CN")
    except phonenumbers.NumberParseException:
        return False
    valid = phonenumbers.is_valid_number_for_region(parsed, "CN")
    return valid and phonenumbers.number_type(parsed) in MOBILE_TYPES


def normalise(values: list, allow_international: bool = False) -> list[tuple[str, str]]:
    phone, reason = normalise_phones(
        pd.Series(values, dtype=object), allow_international=allow_international
    )
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
    _, abroad = normalise_phones(pd.Series(["+4420"]), allow_international=True)
    assert set(reason) | set(abroad) | {"duplicate"} == set(REASONS)
    assert len(set(REASONS.values())) == len(REASONS)


@pytest.mark.parametrize(
    ("raw", "phone", "reason"),
    [
        ("+44 7911 123456", "+447911123456", ""),
        ("0044 7911 123456", "+447911123456", ""),
        ("+1 (345) 916-1234", "+13459161234", ""),
        ("＋８５２　５１２３　４５６７", "+85251234567", ""),
        ("+44 20 7946 0958", "", "international_invalid"),  # a London landline
        ("+999 12345", "", "international_invalid"),
        ("+86 138 0013 8000", "13800138000", ""),  # mainland numbers stay 11 digits
        ("447911123456", "", "wrong_length"),  # no + or 00: not taken for international
    ],
)
def test_international_numbers_when_allowed(raw: str, phone: str, reason: str) -> None:
    assert normalise([raw], allow_international=True) == [(phone, reason)]
    if phone.startswith("+"):
        assert normalise([raw]) == [("", "international")]


def test_keys_keep_mainland_and_e164_numbers_apart() -> None:
    keys = phone_keys(pd.Series(["13459161234", "+13459161234", "+447911123456"], dtype="str"))
    assert keys.tolist() == [13459161234, -13459161234, -447911123456]


def agreement_cases() -> list[str]:
    """110,000 numbers: 100 in every 4-digit prefix 1000-1999 (valid and invalid mobiles alike),
    and 10,000 of other shapes (other first digits, written with +86, and near-valid numbers one
    digit short or long)."""
    rng = random.Random(86)
    numbers = [
        f"{prefix}{rng.randrange(10**7):07d}" for prefix in range(1000, 2000) for _ in range(100)
    ]
    for _ in range(2500):
        numbers.append(f"{rng.choice('023456789')}{rng.randrange(10**10):010d}")
        numbers.append(f"+86 {rng.randrange(13, 20)}{rng.randrange(10**9):09d}")
        numbers.extend(near_valid(rng))
    return numbers


def near_valid(rng: random.Random) -> tuple[str, str]:
    """A valid mobile prefix (13-19) with one digit too few and one digit too many."""
    prefix = rng.randrange(13, 20)
    return f"{prefix}{rng.randrange(10**8):08d}", f"{prefix}{rng.randrange(10**10):010d}"


def test_near_valid_numbers_one_digit_off_are_refused_for_their_length() -> None:
    rng = random.Random(10)
    numbers = [number for _ in range(2000) for number in near_valid(rng)]
    assert {len(number) for number in numbers} == {10, 12}
    assert not any(oracle(number) for number in numbers)
    assert set(normalise(numbers)) == {("", "wrong_length")}


def test_agrees_with_phonenumbers_on_every_prefix() -> None:
    numbers = agreement_cases()
    phone, _ = normalise_phones(pd.Series(numbers))
    ours = (phone != "").tolist()
    disagreements = [
        (number, mine) for number, mine in zip(numbers, ours, strict=True) if mine != oracle(number)
    ]
    assert len(numbers) >= 100_000
    assert 0.3 < sum(ours) / len(numbers) < 0.7  # both verdicts are well represented
    assert len(disagreements) <= len(numbers) * 0.001, f"(number, ours): {disagreements}"


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


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(messy_text, valid_numbers, written().map(lambda case: case[1]))))
def test_never_turns_a_number_into_a_different_valid_one(texts: list[str]) -> None:
    """A valid result is the input's own digits, minus only a country code and a ".0" tail."""
    for text, (phone, _) in zip(texts, normalise(texts), strict=True):
        if phone:
            folded = re.sub(r"\.0+\s*$", "", unicodedata.normalize("NFKC", text))
            digits = "".join(ch for ch in folded if ch.isdigit())
            assert digits in (phone, "86" + phone, "0086" + phone), (text, phone)


def oracle_safe(text: str) -> bool:
    """A bare 11-digit valid number, which must never become another number."""
    return len(text) == 11 and text.isascii() and text.isdigit() and oracle(text)
