"""The command line: parse options, call ``campaigns.api``, print. Decisions live in the library.

``base`` holds the group, its global options and the one place that turns errors into one line
and an exit code; each other module adds the commands of one stage. Exit codes: 0 done, 1 user
error, 2 stopped for an account or provider reason, 130 interrupted.
"""

from __future__ import annotations

import signal

from campaigns.cli import (  # noqa: F401  (each module registers its commands on the group)
    doctor_cmd,
    intake_cmds,
    reconcile_cmd,
    report_cmd,
    sandbox_cmds,
    send_cmds,
    status_cmds,
)
from campaigns.cli.base import cli

__all__ = ["cli", "main"]


def main() -> None:
    # SIGTERM stops a send the way Ctrl-C does: in-flight requests finish and are recorded.
    # SIGINT too, even when started from a script that ignores it (a background job does).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cli(prog_name="campaigns")
