"""Why a row was not accepted: each reason code and its plain-English explanation.

Kept apart from the intake code (which needs pandas) so that `status` can explain a campaign's
rejects without loading pandas.
"""

MAX_LENGTH = 1000  # the provider refuses longer content

PHONE_REASONS: dict[str, str] = {
    "empty": "The phone cell is empty.",
    "excel_scientific": (
        "Excel showed the number in scientific notation (like 1.38001E+10) and lost its last"
        " digits: format the phone column as Text in Excel, enter the numbers again and save."
    ),
    "not_a_number": "The phone cell holds letters or symbols, not a phone number.",
    "wrong_length": "A mainland mobile number has 11 digits; this one has a different count.",
    "landline": "This is a landline number (it starts with a 0 area code); SMS only reach mobiles.",
    "international": (
        "This number is outside mainland China; only +86 mobile numbers are sent unless"
        " international numbers are allowed."
    ),
    "international_invalid": (
        "This international number is not a valid mobile number for its country"
        " (checked with Google's libphonenumber)."
    ),
    "not_mobile": "This has 11 digits but is not a mainland mobile number range.",
    "duplicate": "Same number as an earlier row; only the first one is sent.",
}

RENDER_REASONS: dict[str, str] = {
    "empty_field": "A column used in the message is empty in this row.",
    "too_long": f"The filled-in message is longer than {MAX_LENGTH} characters; it cannot be sent.",
}

REASONS: dict[str, str] = {
    **PHONE_REASONS,
    **RENDER_REASONS,
    "suppressed": "On the suppression list (opted out / 退订): never sent.",
}
