"""Intake: read a recipients file, normalise its phone numbers, render each message."""

from campaigns.intake.phones import normalise_phones
from campaigns.intake.read import PHONE_HEADERS, Recipients, read_recipients
from campaigns.intake.render import (
    MAX_LENGTH,
    placeholders,
    render,
    segments,
    too_long,
    utf16_length,
    utf16_lengths,
)

__all__ = [
    "MAX_LENGTH",
    "PHONE_HEADERS",
    "Recipients",
    "normalise_phones",
    "placeholders",
    "read_recipients",
    "render",
    "segments",
    "too_long",
    "utf16_length",
    "utf16_lengths",
]
