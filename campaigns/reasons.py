"""Why a row was not accepted: each reason code, explained in plain English and in Chinese.

Kept apart from the intake code (which needs pandas) so that `status` can explain a campaign's
rejects without loading pandas.
"""

MAX_LENGTH = 1000  # the provider refuses longer content

PHONE_REASONS: dict[str, str] = {
    "empty": "The phone cell is empty. (手机号为空)",
    "excel_scientific": (
        "Excel showed the number in scientific notation (like 1.38001E+10) and lost its last"
        " digits: format the phone column as Text in Excel, enter the numbers again and save."
        " (Excel 用科学计数法显示号码, 末几位已丢失: 请把手机号列设为文本格式后重新录入)"
    ),
    "not_a_number": "The phone cell holds letters or symbols, not a phone number. (不是手机号码)",
    "wrong_length": (
        "A mainland mobile number has 11 digits; this one has a different count. (号码位数不对)"
    ),
    "landline": "This is a landline number (it starts with a 0 area code); SMS only reach mobiles."
    " (固定电话号码, 无法接收短信)",
    "international": (
        "This number is outside mainland China; only +86 mobile numbers are sent unless"
        " international numbers are allowed. (境外号码, 未允许发送)"
    ),
    "international_invalid": (
        "This international number is not a valid mobile number for its country"
        " (checked with Google's libphonenumber). (无效的境外手机号)"
    ),
    "not_mobile": (
        "This has 11 digits but is not a mainland mobile number range. (不是有效的手机号段)"
    ),
    "duplicate": (
        "Same number as an earlier row; only the first one is sent. (重复号码, 只发第一行)"
    ),
}

RENDER_REASONS: dict[str, str] = {
    "empty_field": "A column used in the message is empty in this row. (短信内容用到的列为空)",
    "too_long": f"The filled-in message is longer than {MAX_LENGTH} characters; it cannot be sent."
    f" (短信内容超过{MAX_LENGTH}字)",
}

REASONS: dict[str, str] = {
    **PHONE_REASONS,
    **RENDER_REASONS,
    "suppressed": "On the suppression list (opted out): never sent. (已退订, 不发送)",
}
