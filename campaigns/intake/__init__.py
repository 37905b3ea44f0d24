"""Intake: read a recipients file, normalise its phone numbers, render each message."""

from campaigns.intake.phones import normalise_phones, phone_keys
from campaigns.intake.read import PHONE_HEADERS, Chunk, Recipients, read_recipients
from campaigns.intake.rejects import RejectsFile, check_rejects_path
from campaigns.intake.render import (
    MAX_LENGTH,
    blocked_texts,
    check_placeholders,
    load_template,
    placeholders,
    render,
    segments,
    template_warnings,
    utf16_lengths,
)

__all__ = [
    "MAX_LENGTH",
    "PHONE_HEADERS",
    "Chunk",
    "Recipients",
    "RejectsFile",
    "blocked_texts",
    "check_placeholders",
    "check_rejects_path",
    "load_template",
    "normalise_phones",
    "phone_keys",
    "placeholders",
    "read_recipients",
    "render",
    "segments",
    "template_warnings",
    "utf16_lengths",
]
