"""Resume and status on a big campaign: start-up costs that grow with the database.

A campaign of ``--messages`` (default 1,000,000) with all but ``--remaining`` (default 1,000)
already final (2 % invalid, 1 % failed, 5 % undelivered, the rest delivered, each with a
provider record) is written straight into a database created by ``campaigns.store.db.Store``
(so the project's migrations made the schema), and cached in ``bench/.cache``. Each run copies
it and measures, in child processes:

- seconds from starting ``campaigns send`` to the first request arriving at the sandbox (which
  runs in this process and records arrival times on the same monotonic clock); goal <= 1 s;
- wall seconds of ``campaigns status NAME`` on the same database; goal <= 0.5 s.

The same two figures on a small campaign (2,000 messages) and the bare ``import campaigns.cli``
time are the floor: what does not depend on the database's size.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from pathlib import Path

from bench._common import (
    APP_ID,
    APP_SECRET,
    CACHE,
    MESSAGE,
    PYTHON,
    campaigns_cmd,
    cli_env,
    copy_db,
    goal,
    median,
    no_gc_pauses,
    parser,
    phones,
    poll_child,
    print_goals,
    print_table,
    run_child,
    spread,
    start_child,
    state_counts,
    wait_child,
    workdir,
    write_results,
)

NAME = "resume"
CAMPAIGN = "bench-resume"
VERSION = 1
TOKEN = "b3ec4a11f00d"


COLUMNS = (
    "row_number", "raw_phone", "phone", "message_id", "content", "segments", "state", "reason",
    "error_code", "error_text", "attempts", "fields", "queued_at", "sending_at", "sent_at",
    "final_at", "provider_record",
)  # fmt: skip
QUEUED_AT = "2026-11-20 09:00:00.000000"
SENT_AT = "2026-11-20 09:30:00.000000"
FINAL_AT = "2026-11-20 09:30:05.000000"


def _row(i: int, number: str, sequence: int, total: int, remaining: int) -> dict:
    """Row ``i`` in input order: the first total - remaining are final, the rest pending."""
    row = {
        "row_number": i + 2,
        "raw_phone": number,
        "phone": number,
        "message_id": f"{TOKEN}-{sequence:07d}",
        "content": f"【榛子演示】客户{i}您好,您的订单DD{i:010d}已发货,回T退订",
        "segments": 1,
        "attempts": 1,
        "fields": json.dumps(
            {"phone": number, "name": f"客户{i}", "order": f"DD{i:010d}"}, ensure_ascii=False
        ),
        "queued_at": QUEUED_AT,
    }
    if i >= total - remaining:
        return row | {"state": "pending", "attempts": 0}
    if i % 50 == 7:
        return row | {
            "state": "invalid",
            "phone": None,
            "message_id": None,
            "content": "",
            "segments": 0,
            "attempts": 0,
            "reason": "wrong_length",
            "error_text": "A mainland mobile number has 11 digits",
        }
    if i % 100 == 13:
        return row | {
            "state": "failed",
            "error_code": 109,
            "error_text": "daily limit for this number exceeded",
            "sending_at": SENT_AT,
        }
    undelivered = i % 20 == 3
    record = {
        "appName": "campaigns-sandbox",
        "createTime": "2026-11-20 17:30:00",
        "errorMsg": "UNDELIV 用户停机/空号" if undelivered else "",
        "message": row["content"],
        "messageId": row["message_id"],
        "segments": 1,
        "status": "failed" if undelivered else "success",
        "statusTime": "2026-11-20 17:30:05",
        "toNumber": number,
    }
    return row | {
        "state": "undelivered" if undelivered else "delivered",
        "error_text": "UNDELIV 用户停机/空号" if undelivered else None,
        "sending_at": SENT_AT,
        "sent_at": SENT_AT,
        "final_at": FINAL_AT,
        "provider_record": json.dumps(record, ensure_ascii=False, sort_keys=True),
    }


def _rows(total: int, remaining: int):
    sequence = 0
    for i, number in enumerate(phones(total)):
        row = _row(i, number, sequence + 1, total, remaining)
        if row["message_id"] is not None:
            sequence += 1
        yield tuple(row.get(column) for column in COLUMNS)


def _schema_key() -> str:
    """Names the migrations of the code under test, so a cached database is never one that the
    command would first have to migrate (which would be timed as start-up)."""
    from importlib import resources

    versions = resources.files("campaigns.migrations") / "versions"
    names = sorted(p.name for p in versions.iterdir() if p.name.endswith(".py"))
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:8]


def build_db(total: int, remaining: int) -> Path:
    """The cached campaign database; schema by the project's migrations, rows by executemany."""
    from campaigns.store.db import Store

    path = CACHE / f"resume-{total}-{remaining}-v{VERSION}-{_schema_key()}.db"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    Store(f"sqlite:///{tmp}").close()
    with contextlib.closing(sqlite3.connect(tmp)) as con:
        con.execute("PRAGMA synchronous=OFF")
        con.execute(
            "INSERT INTO campaigns (id, name, token, template, source, created_at, started_at)"
            " VALUES (1, ?, ?, ?, 'recipients.csv', '2026-11-20 08:59:00.000000',"
            " '2026-11-20 09:00:00.000000')",
            (CAMPAIGN, TOKEN, MESSAGE),
        )
        extra = _required_columns(con)
        con.executemany(
            f"INSERT INTO messages (campaign_id, {', '.join(COLUMNS + tuple(extra))})"
            f" VALUES (1, {', '.join('?' * (len(COLUMNS) + len(extra)))})",
            (row + tuple(extra.values()) for row in _rows(total, remaining)),
        )
        con.commit()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    tmp.replace(path)
    return path


def _required_columns(con: sqlite3.Connection) -> dict[str, object]:
    """NOT NULL columns without a default that later migrations added: a neutral value each."""
    extra: dict[str, object] = {}
    for _, name, kind, notnull, default, primary in con.execute("PRAGMA table_info(messages)"):
        if notnull and default is None and not primary and name not in (*COLUMNS, "campaign_id"):
            extra[name] = 0 if "INT" in kind.upper() or "FLOAT" in kind.upper() else ""
    if extra:
        print(f"note: filled new NOT NULL columns {sorted(extra)} with neutral values")
    return extra


def first_request(sandbox, db_path: Path) -> dict:
    """Start ``campaigns send``; seconds until the sandbox sees its first request; wait for it."""
    before = sandbox.request_count("/sms/send.do") + sandbox.request_count(
        "/smslog/findSmsByMessageId.do"
    )
    arrivals_before = len(sandbox.arrival_times())
    with no_gc_pauses():
        proc, out, err, started = start_child(
            campaigns_cmd("send", CAMPAIGN, "--concurrency", "8"),
            env=cli_env(db_path, sandbox.url),
        )
        first = child = None
        while child is None and first is None:
            arrivals = sandbox.arrival_times()
            if len(arrivals) > arrivals_before:
                first = arrivals[arrivals_before] - started
            else:
                child = poll_child(proc, out, err, started)
                time.sleep(0.002)
    if child is None:
        child = wait_child(proc, out, err, started, timeout=600)
    child.check("campaigns send")
    if first is None:
        arrivals = sandbox.arrival_times()
        first = arrivals[arrivals_before] - started if len(arrivals) > arrivals_before else None
    if first is None:
        raise RuntimeError(f"send made no request: {child.stdout} {child.stderr}")
    after = sandbox.request_count("/sms/send.do") + sandbox.request_count(
        "/smslog/findSmsByMessageId.do"
    )
    return {"first_request_s": first, "send_wall_s": child.wall, "requests": after - before}


def status_time(db_path: Path, *extra: str) -> float:
    child = run_child(campaigns_cmd("status", CAMPAIGN, *extra), env=cli_env(db_path))
    return child.check("campaigns status").wall


def main(argv: list[str] | None = None) -> int:
    args_parser = parser(NAME, __doc__.split("\n\n")[0])
    from campaigns.provider.sandbox import Sandbox, SandboxConfig  # after parser(): code under test

    args_parser.add_argument("--messages", type=int, default=1_000_000)
    args_parser.add_argument("--remaining", type=int, default=1_000)
    args_parser.add_argument("--floor-messages", type=int, default=2_000)
    args = args_parser.parse_args(argv)
    if args.smoke:
        args.messages, args.remaining, args.floor_messages, args.runs = 5_000, 50, 200, 1
    runs = args.runs or 3
    started = time.monotonic()
    big = build_db(args.messages, args.remaining)
    small = build_db(args.floor_messages, min(args.remaining, args.floor_messages // 2))
    print(
        f"databases: {big} ({big.stat().st_size / 2**20:.0f} MB, built or reused in "
        f"{time.monotonic() - started:.1f} s), {small.name}",
        flush=True,
    )
    config = SandboxConfig(
        app_id=APP_ID,
        app_secret=APP_SECRET,
        balance=10**9,
        daily_limit=0,
        latency_ms=2,
        delivery_delay_s=60,
    )
    per_run: list[dict] = []
    with workdir(NAME, args.keep) as work, Sandbox(config) as sandbox:
        for run in range(runs):
            figures: dict = {"import_cli_s": run_child([PYTHON, "-c", "import campaigns.cli"]).wall}
            for label, source in (("big", big), ("small", small)):
                db_path = copy_db(source, work / f"{label}.db")
                figures[label] = first_request(sandbox, db_path)
                figures[label]["status_s"] = status_time(db_path)
                figures[label]["status_json_s"] = status_time(db_path, "--json")
                counts = state_counts(db_path)
                if counts.get("pending", 0) or counts.get("sending", 0):
                    raise RuntimeError(f"send did not finish: {counts}")
            per_run.append(figures)
            print(
                f"run {run + 1}/{runs}: first request {figures['big']['first_request_s']:.3f} s "
                f"(floor {figures['small']['first_request_s']:.3f} s), status "
                f"{figures['big']['status_s']:.3f} s (floor {figures['small']['status_s']:.3f} s)",
                flush=True,
            )

    def med(label: str, key: str) -> float:
        return median(r[label][key] for r in per_run)

    def spr(label: str, key: str) -> str:
        return spread([r[label][key] for r in per_run])

    rows = []
    for label, size in (("big", args.messages), ("small", args.floor_messages)):
        rows.append(
            [
                f"send → first request ({label})",
                size,
                med(label, "first_request_s"),
                spr(label, "first_request_s"),
            ]
        )
        rows.append([f"status ({label})", size, med(label, "status_s"), spr(label, "status_s")])
        rows.append(
            [
                f"status --json ({label})",
                size,
                med(label, "status_json_s"),
                spr(label, "status_json_s"),
            ]
        )
    import_floor = median(r["import_cli_s"] for r in per_run)
    rows.append(
        [
            "python -c 'import campaigns.cli'",
            "",
            import_floor,
            spread([r["import_cli_s"] for r in per_run]),
        ]
    )
    print_table(
        f"resume: {args.messages:,} messages, {args.remaining:,} pending, median of {runs} run(s)",
        ["measure", "messages", "seconds", "runs min–max"],
        rows,
    )
    goals = [
        goal("send → first request, s", med("big", "first_request_s"), "<=", 1.0),
        goal("status, s", med("big", "status_s"), "<=", 0.5),
    ]
    print_goals(goals)
    write_results(
        NAME,
        args,
        {
            "params": {
                "messages": args.messages,
                "remaining": args.remaining,
                "floor_messages": args.floor_messages,
                "runs": runs,
            },
            "rows": {
                label: {key: med(label, key) for key in per_run[0][label]}
                for label in ("big", "small")
            }
            | {"import_campaigns_cli_s": import_floor},
            "goals": goals,
            "runs": per_run,
            "notes": [
                "Seconds are wall time from Popen to the first request at the sandbox, or to "
                "the status process's exit; interpreter start-up and imports included.",
                "The database file is a fresh copy each run (so it is in the page cache).",
            ],
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
