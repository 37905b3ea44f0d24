"""A loopback simulator of the Zhenzi (榛子云短信) HTTP API, for tests, demos and benchmarks.

It serves the four documented paths (``/sms/send.do``, ``/sms/v2/send.do``,
``/account/balance.do``, ``/smslog/findSmsByMessageId.do``) with the documented wire format:
``POST`` of ``application/x-www-form-urlencoded`` UTF-8 fields, reply HTTP 200 with compact JSON
``{"code":<int>,"data":<any>}`` (no spaces, UTF-8 text, as real replies are); error replies carry
the provider's Chinese text in ``data``. Unknown paths get an HTML 404, other methods than
``POST`` an HTML 405. With ``tls_cert`` (and ``tls_key``, unless the key is in the same PEM
file) it serves HTTPS and ``Sandbox.url`` starts with ``https://``.

Modules, by role: ``config`` (``SandboxConfig``), ``provider`` (the rules below), ``state``
(balance, daily counts, records, ledger), ``wire`` (form parsing and reply shapes), ``faults``
(seeded fault draws), ``transport`` (HTTP/TLS framing), ``server`` (``Sandbox``: lifecycle).

Where the provider's document is silent the sandbox chooses, and says so here:

Checks, in this order
    0. Framing, before any rule: ``Content-Length``
       must be one plain decimal byte count no larger than ``max_body_bytes`` (64 KiB: a
       1000-character message fits seven times over); the body must be UTF-8, raw or
       %-escaped. Otherwise HTTP 400 (411 for a missing length or a chunked body) with
       ``{"code":<HTTP status>,"data":"<reason>"}``, and that connection is closed; the server
       goes on serving every other one. Connections idle for ``idle_timeout_s`` are closed.
    1. Credentials on every call: ``appId`` missing or wrong -> 105; ``appSecret`` missing or
       wrong -> 110. The secret is never echoed: not in replies, logs or the ledger.
    2. Send fields: ``number`` must be a mainland mobile number, exactly ``1[3-9]`` and nine more
       ASCII digits, no spaces, no ``+86`` (else 100). v2 only: empty ``templateId`` -> 100,
       unknown one -> 117; ``templateParams`` must be a JSON array of strings (valid Unicode:
       a lone surrogate such as ``"\\ud800"`` is refused) holding at least as many items as
       the template's highest placeholder ``{n}`` (else 100; an empty or absent field counts
       as ``[]``, as the SDKs send for a template without parameters); ``{n}`` is replaced by
       the n-th item, extra items are ignored. The rendered text is then checked
       like a plain ``message``: empty -> 100, longer than 1000 UTF-16 code units -> 101 (an
       emoji outside the BMP counts 2). Other fields (``clientIp``) are accepted and ignored.
    3. Injected faults (see below) 1000 and HTTP 502. Balance and lookup calls get them too,
       after their own field checks.
    4. Daily limit, only when the account sets one (``daily_limit``; None or 0, the default:
       none): at most that many accepted SMS per number per Asia/Shanghai calendar day, else
       109. Refused sends do not count.
    5. Balance, counted in segments: 1 segment up to 70 UTF-16 units, otherwise ceil(units / 67).
       A balance below the message's segments -> 108, and nothing is charged.
    6. Accept: charge the segments, store the delivery record, append the ledger line, reply
       exactly ``{"code":0,"data":"发送成功"}``.

Balance
    ``{"code":0,"data":<int>}``: segments left.

Duplicate ``messageId``
    Not de-duplicated (the worst real provider): every send is accepted, charged, ledgered and
    "delivered" again. A lookup returns the most recent visible record for that id. A send
    without ``messageId`` is delivered and ledgered (``"messageId": null``) but cannot be looked up.

Lookup (``findSmsByMessageId``)
    Empty ``messageId`` -> 100. A known id's record, once ``visibility_delay_s`` has passed since
    acceptance, comes in one of two shapes (``shape``):

    ``"real"`` (the default; what public code shows the provider sends): ``data`` is a JSON
    *object* with exactly ``messageId``, ``toNumber``, ``message``, ``createTime``
    ("YYYY-MM-DD HH:MM:SS", Asia/Shanghai), ``status`` and ``appName`` ("campaigns-sandbox").

    ``"rich"`` (the sandbox's first guess, kept to test tolerant parsing): ``data`` is a JSON
    *string* (the document says "短信信息的json字符串") holding those six fields plus
    ``statusTime`` (same format, "" while pending), ``errorMsg`` ("" unless failed, then
    "UNDELIV 用户停机/空号") and ``segments`` (int).

    ``status`` is ``"pending"`` until the record's due time, then ``"success"`` or ``"failed"``.
    Only ``"success"`` has been seen from the real provider; ``"pending"`` and ``"failed"`` are
    our guesses. Each record's outcome is drawn when it is accepted: it fails with probability
    ``undelivered_share`` and is due ``delivery_delay_s`` times a jitter in [0.5, 1.5) later.

    An unknown id, or one still inside ``visibility_delay_s``, is "not found" (the real reply is
    unknown), answered in the form ``unknown_reply`` names: ``"null"`` (the default)
    ``{"code":0,"data":null}``, ``"empty"`` ``data:""``, ``"object"`` ``data:{}``, ``"list"``
    ``data:[]``, ``"code100"`` ``{"code":100,"data":"参数格式错误"}``, or ``"random"``: one of
    those five per lookup (seeded by ``seed``, apart from the fault draws).

Injected faults (each drawn independently per request from ``random.Random(seed)``)
    ``fail_1000``: reply ``{"code":1000,"data":"系统位置错误"}``, nothing accepted.
    ``fail_5xx``: HTTP 502 with an nginx-like HTML body, nothing accepted (when both fire, 1000
    wins). ``drop_after_accept`` (sends only): accepted, charged and ledgered, then the connection
    is shut down with no reply. ``slow_reply`` (sends only): accepted, then the reply waits
    ``slow_reply_s`` more (drop wins over slow). ``latency_ms`` delays every reply, each request
    on its own thread, so concurrent requests are never serialised. With a ``seed`` and one
    client thread the sequence of faults and outcomes is reproducible.

Ledger
    With ``ledger`` set, one UTF-8 JSON line per accepted SMS is appended and flushed:
    ``{"messageId", "number", "message", "time" (ISO-8601, +08:00), "segments"}``. It is the
    ground truth of what "recipients received" (and what was paid for), duplicates included.

``SandboxConfig`` may be changed while serving; every request reads it afresh (except ``balance``,
the starting balance: use ``Sandbox.set_balance``, and ``seed``, ``host``, ``port``, ``ledger``,
``tls_cert`` and ``tls_key``).
"""

from campaigns.provider.sandbox.config import SHAPES, UNKNOWN_REPLIES, SandboxConfig
from campaigns.provider.sandbox.provider import segments, utf16_units
from campaigns.provider.sandbox.server import Sandbox

__all__ = ["SHAPES", "UNKNOWN_REPLIES", "Sandbox", "SandboxConfig", "segments", "utf16_units"]
