"""Turn whatever a spreadsheet holds into an 11-digit mainland mobile number, or say why not.

Everything works on whole columns (pyarrow string kernels behind pandas' ``.str``), because one
import can hold a million rows and a per-row Python function would cost seconds.  Only numbers
that look international go through ``phonenumbers`` (~60 µs each), and only when asked to.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import phonenumbers

from campaigns.reasons import PHONE_REASONS


# phonenumbers is the reference for which numbers are mobiles.  Its CN mobile pattern covers every
# MOBILE and FIXED_LINE_OR_MOBILE number (the latter must match the mobile pattern too), and every
# branch is 11 digits, so a full match is exactly "valid mobile" for phonenumbers.  \d becomes
# [0-9] so that pandas keeps the pattern on pyarrow's RE2 instead of Python's Unicode-aware re.
def _mobile_pattern() -> str:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    mobile = metadata.mobile if metadata else None
    if mobile is None or not mobile.national_number_pattern:
        raise RuntimeError("phonenumbers has no mobile pattern for CN: reinstall phonenumbers")
    return mobile.national_number_pattern.replace(r"\d", "[0-9]")


MOBILE_PATTERN = _mobile_pattern()
MOBILE_TYPES = (
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
)

REASONS = PHONE_REASONS

# What never belongs to a number: a trailing ".0" (a numeric cell read as text), spaces (also
# zero-width), dots, brackets, hyphens and dashes, and Excel's text markers ' and ="...".
# Spelled out rather than \s, which would send pandas to Python's re.
_NOISE = "\\.0+$|[ \t\n\r\f\v\u200b-\u200d\ufeff.()\u2010-\u2015'\"=-]"
_COUNTRY_PREFIX = r"^(?:\+86|0086|86(1[0-9]{10})$)"  # a bare 86 only before an 11-digit mobile
_SCIENTIFIC = r"[0-9]+[eE][+-]?[0-9]+"  # 1.38001E+10 once the dot is gone
_INTERNATIONAL = r"(?:\+|00)[0-9]+"
_LANDLINE = r"0[1-9][0-9]{8,10}"  # area code 0xx/0xxx and a 7- or 8-digit local number


def normalise_phones(
    raw: pd.Series, *, allow_international: bool = False
) -> tuple[pd.Series, pd.Series]:
    """Return (phone, reason), aligned with ``raw``.

    ``phone`` is the 11-digit mainland mobile number, or "" when rejected; ``reason`` is "" when
    accepted, else a key of REASONS.  With ``allow_international``, a number written with ``+``
    or ``00`` and a country code other than 86 is accepted when ``phonenumbers`` finds it a
    valid mobile number, as E.164 (``+447911123456``).  Accepted numbers are a fixed point:
    normalising them again returns them unchanged.
    """
    compact = _folded(raw).str.replace(_NOISE, "", regex=True)
    prefixed = (compact.str.len() > 11).to_numpy()  # only these can carry a country code
    digits = compact.mask(
        prefixed, compact[prefixed].str.replace(_COUNTRY_PREFIX, r"\1", regex=True)
    )
    reason = pd.Series("", index=digits.index, dtype="str")
    wrong = ~digits.str.fullmatch(MOBILE_PATTERN).to_numpy(dtype=bool)
    if wrong.any():  # the detailed reason only for the numbers that are not mobile numbers
        reason = reason.mask(wrong, _reasons(digits[wrong]))
    if allow_international:
        abroad = reason == "international"
        if abroad.any():
            digits = digits.mask(abroad, digits[abroad].map(_e164).astype("str"))
            reason = reason.mask(abroad, "").mask(abroad & (digits == ""), "international_invalid")
    return digits.where(reason == "", ""), reason


def phone_keys(phone: pd.Series) -> np.ndarray:
    """An int64 per accepted number, for de-duplication in 8 bytes a number: the mainland number
    itself, or minus the digits of an E.164 number (+1 345… must not equal 1345…)."""
    abroad = phone.str.startswith("+").to_numpy(dtype=bool)
    if not abroad.any():
        return phone.astype("int64").to_numpy()
    keys = phone.str.removeprefix("+").astype("int64").to_numpy()
    return np.where(abroad, -keys, keys)


def _e164(number: str) -> str:
    """``+CC…`` or ``00CC…`` as E.164 if phonenumbers finds it a valid mobile number, else ""."""
    try:
        parsed = phonenumbers.parse("+" + number.removeprefix("+").removeprefix("00"))
    except phonenumbers.NumberParseException:
        return ""
    mobile = phonenumbers.number_type(parsed) in MOBILE_TYPES
    if not (mobile and phonenumbers.is_valid_number(parsed)):
        return ""
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _folded(raw: pd.Series) -> pd.Series:
    """Text with full-width digits and symbols folded to ASCII (NFKC)."""
    text = raw.astype("str").fillna("")
    wide = text.str.contains(r"[^\x00-\x7f]", regex=True)
    if wide.any():  # NFKC is a per-value Python call: only pay it where it can change something
        text = text.mask(wide, text[wide].str.normalize("NFKC"))
    return text


def _reasons(digits: pd.Series) -> pd.Series:
    """Why each number is not a mainland mobile number: the first reason that applies, in the
    order the user should fix them."""
    checks = {
        "empty": digits == "",
        "excel_scientific": digits.str.fullmatch(_SCIENTIFIC),
        "international": digits.str.fullmatch(_INTERNATIONAL),
        "not_a_number": ~digits.str.fullmatch("[0-9]+"),
        "landline": digits.str.fullmatch(_LANDLINE),
        "wrong_length": digits.str.len() != 11,
    }  # and otherwise: 11 digits, but no mobile range
    conditions = [check.to_numpy(dtype=bool) for check in checks.values()]
    picked = np.select(conditions, np.arange(len(checks)), default=len(checks))
    codes = np.array([*checks, "not_mobile"], dtype=object)
    return pd.Series(codes[picked], index=digits.index, dtype="str")
