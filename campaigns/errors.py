"""What went wrong, phrased as what the caller must do next.

The library raises these; only the CLI turns them into one-line messages and exit codes.
"""

from __future__ import annotations

from enum import Enum


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
    looked up before it is sent again. ``error_reply`` is True when a server *answered* that the
    request failed (HTTP 5xx, code 1000): it most likely went no further, so only the lookup
    that can also say "not found" is worth its slot, not an early one that hopes to find it.
    """

    requests = 1

    def __init__(self, reason: str, *, maybe_sent: bool, error_reply: bool = False) -> None:
        super().__init__(reason)
        self.maybe_sent = maybe_sent
        self.error_reply = error_reply


class StopReason(Enum):
    """Why a send ended before the campaign was done. In order of precedence: when several
    happen in one run, the first listed is the one reported (and sets the exit code)."""

    ACCOUNT = "account"  # the provider refused the account (105-111, 117)
    PROVIDER_DOWN = "provider down"  # many messages in a row used up all their retries
    CONNECTION = "connection"  # TLS refused or no request can be made as configured: none sent
    CANCELLED = "cancelled"  # `campaigns cancel`
    OVER_BUDGET = "over budget"  # too many recent permanent failures: the campaign is paused
    PAUSED = "paused"  # `campaigns pause`
    SCHEDULE = "schedule"  # outside the window, past --until, or before --at with --no-wait
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM
    BALANCE = "balance"  # before sending: the balance cannot cover the campaign


class SendStopped(CampaignsError):
    """A send ended before the campaign was done, for ``reason``; resumable unless cancelled.

    ``account`` is the provider's refusal when the reason is ``StopReason.ACCOUNT``.
    """

    def __init__(
        self, message: str, reason: StopReason, *, account: AccountBlocked | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.account = account


class TlsError(CampaignsError):
    """The provider's TLS certificate was refused: nothing was sent over that connection.

    Neither an account problem nor a transient one: retrying cannot help, and the fix is in the
    configuration (``--api-url``, ``--ca-bundle``) or at the provider. ``kind`` is one of
    ``unknown CA``, ``expired``, ``name``, ``certificate``, ``handshake``.
    """

    maybe_sent = False
    requests = 0

    def __init__(self, host: str, kind: str, what: str, advice: str = "") -> None:
        self.host = host
        self.kind = kind
        self.advice = advice
        text = f"TLS check failed for {host}: {what}"
        super().__init__(f"{text}; {advice}" if advice else text)


class ConnectionProblem(CampaignsError):
    """The request could not be made as configured (bad URL, a redirect, a broken reply stream).

    Nothing reached the provider, or what came back cannot be trusted; retrying as is will not
    help: the message says what to fix.
    """

    maybe_sent = False
    requests = 0
