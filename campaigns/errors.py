"""What went wrong, phrased as what the caller must do next.

The library raises these; only the CLI turns them into one-line messages and exit codes.
"""

from __future__ import annotations


class CampaignsError(Exception):
    """Base of every error the library raises on purpose."""


class UserError(CampaignsError):
    """The user's input is wrong (file, option, name): fix it and run again. Exit code 1."""


class InputFileError(UserError):
    """A recipients file cannot be read as asked; the message names the file, row and column."""


class ProviderError(CampaignsError):
    """The provider answered with an error code. ``code`` and ``text`` are the provider's own.

    ``maybe_sent`` is True when an earlier attempt of the same send may have reached the provider
    (the error came from the lookup that followed it): such a message's outcome is unknown.
    """

    maybe_sent = False
    requests = 1  # how many send requests the client made for the message before this error

    def __init__(self, code: int, text: str, meaning: str = "") -> None:
        self.code = code
        self.text = text
        self.meaning = meaning
        super().__init__(f"provider code {code}: {meaning or text}")


class MessageRejected(ProviderError):
    """This message only is bad (100, 101, 109): record it as failed and go on."""


class AccountBlocked(ProviderError):
    """The account, credentials or template are unusable (105-111, 117): stop sending at once.

    Nothing already claimed is marked failed for it; ``advice`` says what the operator must do.
    """

    def __init__(self, code: int, text: str, meaning: str = "", advice: str = "") -> None:
        super().__init__(code, text, meaning)
        self.advice = advice


class Transient(CampaignsError):
    """Try again later (code 1000, HTTP 5xx, garbage body, network trouble).

    ``maybe_sent`` is True when the request may have reached the provider: the message must be
    looked up before it is sent again.
    """

    requests = 1

    def __init__(self, reason: str, *, maybe_sent: bool) -> None:
        super().__init__(reason)
        self.maybe_sent = maybe_sent


class SendStopped(CampaignsError):
    """A send ended before the campaign was done (account problem or interruption); resumable."""

    def __init__(self, message: str, *, account: AccountBlocked | None = None) -> None:
        super().__init__(message)
        self.account = account
