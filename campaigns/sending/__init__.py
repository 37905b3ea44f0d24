"""Send a campaign exactly once, resumable, with several senders if need be.

The rule that buys exactly-once: a message is committed as ``sending`` before its request leaves,
and a message found ``sending`` is never sent again before its messageId has been looked up.
Every write of an outcome is fenced on the sender's name, so a sender that was merely slow and
lost its lease changes nothing.

The rooms, each with its own state, none importing another but through ``run``:

    run       the loop: claim, hand out, collect, record in batches; settles why it stopped
    gate      schedule (window, --at, --until), pause/cancel, suppression list, --cap
    workers   the thread pool that talks to the provider: one outcome per claim, always
    lookups   settle unknown outcomes by asking the provider, never by sending again
    leases    this run's name, the heartbeat, taking over a dead sender's messages
    budget    pause the campaign when too many recent sends fail for a permanent reason
    stop      why the run is ending: told by every room, read by the run (under them all)
    outcomes  the ``Outcome`` each thing that can happen to a claim records
    options   SendOptions in, SendProgress and SendPlan out
"""

from campaigns.sending.leases import LEASE, LEASE_MARGIN, is_dead_here, sender_name
from campaigns.sending.options import SendOptions, SendPlan, SendProgress
from campaigns.sending.run import plan, send_campaign

__all__ = [
    "LEASE",
    "LEASE_MARGIN",
    "SendOptions",
    "SendPlan",
    "SendProgress",
    "is_dead_here",
    "plan",
    "send_campaign",
    "sender_name",
]
