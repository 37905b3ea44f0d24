"""Reading recipients files in tests: write one, read it whole, or read the one-line refusal."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from campaigns.errors import InputFileError
from campaigns.intake.read import read_recipients


def write(tmp_path: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def read_all(path: Path, **options: str) -> SimpleNamespace:
    """The whole file at once: every chunk's rows and row numbers, concatenated."""
    recipients = read_recipients(path, **options)
    chunks = list(recipients.chunks)
    return SimpleNamespace(
        frame=pd.concat([chunk.frame for chunk in chunks], ignore_index=True),
        row_numbers=np.concatenate([chunk.row_numbers for chunk in chunks]),
        phone_column=recipients.phone_column,
        source=recipients.source,
    )


def read_error(path: Path, **options: str) -> str:
    """The message of the InputFileError, checked to be one line naming the file."""
    with pytest.raises(InputFileError) as caught:
        read_all(path, **options)
    message = str(caught.value)
    assert "\n" not in message
    assert path.name in message
    return message
