"""Send throughput: the naive loop, the bare-requests ceiling and ``campaigns send``, one sandbox.

The sandbox runs in its own process (``campaigns sandbox``) with 20 ms latency, no faults, no daily
limit. Each run measures, in turn:

(a) the loop a user writes from the provider's document: one ``requests.post`` after another (a
    new connection each time, as in the document's examples), over a smaller sample;
(b) the ceiling: ``--concurrency`` threads (default: ``campaigns send``'s own default, the
    concurrency the pipeline runs with), each with its own keep-alive ``requests.Session``, no
    database, no limiter, no retries;
(c) ``campaigns send`` in a child process, end to end (interpreter start, migrations check,
    claims, commits), on a campaign imported beforehand into a fresh SQLite file.

Goals (issue 5): c/b >= 0.90 and c/a >= 10.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from datetime import datetime
from pathlib import Path

from bench._common import (
    SEND_PATH,
    SandboxProcess,
    add_pipeline_options,
    bare_pool,
    campaigns_cmd,
    cli_env,
    copy_db,
    goal,
    import_campaign,
    median,
    parser,
    phones,
    print_goals,
    print_table,
    run_child,
    send_form,
    spread,
    state_counts,
    workdir,
    write_recipients,
    write_results,
)

NAME = "send"
CAMPAIGN = "bench-send"


def naive_loop(url: str, count: int, run: int) -> dict:
    import requests

    numbers = phones(count, start=5_000_000)
    cpu = time.process_time()
    started = time.monotonic()
    errors = 0
    for i, number in enumerate(numbers):
        reply = requests.post(url + SEND_PATH, data=send_form(number, f"naive-{run}-{i}"))
        errors += reply.json()["code"] != 0
    seconds = time.monotonic() - started
    return {
        "messages": count,
        "seconds": seconds,
        "rate": count / seconds,
        "client_cpu_ms": 1000 * (time.process_time() - cpu) / count,
        "errors": errors,
    }


def ceiling(url: str, count: int, concurrency: int, run: int) -> dict:
    forms = [
        send_form(number, f"ceiling-{run}-{i}")
        for i, number in enumerate(phones(count, start=6_000_000))
    ]
    cpu = time.process_time()
    pool = bare_pool(url + SEND_PATH, forms, concurrency)
    return {
        "messages": count,
        "seconds": pool.seconds,
        "rate": pool.rate,
        "client_cpu_ms": 1000 * (time.process_time() - cpu) / count,
        "errors": pool.errors,
    }


def _window(db_path: Path) -> float:
    """Seconds from the first claim (or, when claims leave no time, the first outcome) to the
    last recorded outcome, from the database itself."""
    with contextlib.closing(sqlite3.connect(db_path)) as con:
        columns = {row[1] for row in con.execute("PRAGMA table_info(messages)")}
        first_claim = "min(sending_at)" if "sending_at" in columns else "NULL"
        first, first_sent, last = con.execute(
            f"SELECT {first_claim}, min(sent_at), max(sent_at) FROM messages"
        ).fetchone()
    if not (first or first_sent) or not last:
        return float("nan")
    start = datetime.fromisoformat(first or first_sent)
    return (datetime.fromisoformat(last) - start).total_seconds()


def pipeline(url: str, template: Path, db_path: Path, count: int, concurrency: int) -> dict:
    copy_db(template, db_path)
    child = run_child(
        campaigns_cmd("send", CAMPAIGN, "--concurrency", str(concurrency)),
        env=cli_env(db_path, url),
        timeout=3600,
    ).check("campaigns send")
    counts = state_counts(db_path)
    if counts.get("sent", 0) != count:
        raise RuntimeError(f"campaigns send left {counts}, expected {count} sent")
    window = _window(db_path)
    return {
        "messages": count,
        "seconds": child.wall,
        "rate": count / child.wall,
        "client_cpu_ms": 1000 * child.cpu / count,
        "client_cpu_s": child.cpu,
        "maxrss_mb": child.maxrss_mb,
        "steady_seconds": window,
        "steady_rate": count / window,
        "errors": count - counts.get("sent", 0),
    }


def main(argv: list[str] | None = None) -> int:
    args_parser = parser(NAME, __doc__.split("\n\n")[0])
    add_pipeline_options(args_parser, "send")
    args_parser.add_argument(
        "--naive-messages", type=int, default=500, help="sample timed for the naive loop (a)"
    )
    args = args_parser.parse_args(argv)
    if args.smoke:
        args.messages, args.naive_messages, args.runs = 200, 20, 1
    runs = args.runs or 3
    per_run: list[dict] = []
    with (
        workdir(NAME, args.keep) as work,
        SandboxProcess(latency_ms=args.latency_ms, delivery_delay=60) as sandbox,
    ):
        csv = write_recipients(work / "recipients.csv", args.messages)
        template = work / "template.db"
        import_campaign(template, csv, CAMPAIGN)
        for run in range(runs):
            figures = {}
            for row in "abc":
                sandbox_cpu = sandbox.cpu
                if row == "a":
                    figures[row] = naive_loop(sandbox.url, args.naive_messages, run)
                elif row == "b":
                    figures[row] = ceiling(sandbox.url, args.messages, args.concurrency, run)
                else:
                    figures[row] = pipeline(
                        sandbox.url,
                        template,
                        work / f"run{run}.db",
                        args.messages,
                        args.concurrency,
                    )
                figures[row]["sandbox_cpu_ms"] = (
                    1000 * (sandbox.cpu - sandbox_cpu) / figures[row]["messages"]
                )
            figures["c/b"] = figures["c"]["rate"] / figures["b"]["rate"]
            figures["c/a"] = figures["c"]["rate"] / figures["a"]["rate"]
            figures["c_steady/b"] = figures["c"]["steady_rate"] / figures["b"]["rate"]
            per_run.append(figures)
            print(
                f"run {run + 1}/{runs}: a {figures['a']['rate']:.1f}/s"
                f"  b {figures['b']['rate']:.1f}/s"
                f"  c {figures['c']['rate']:.1f}/s (steady {figures['c']['steady_rate']:.1f}/s)"
                f"  c/b {figures['c/b']:.3f}",
                flush=True,
            )

    def med(row: str, key: str) -> float:
        return median(r[row][key] for r in per_run)

    rows = []
    labels = {
        "a": "(a) naive loop, requests.post",
        "b": f"(b) ceiling: {args.concurrency} threads x Session",
        "c": "(c) campaigns send, end to end",
    }
    for row in "abc":
        rates = [r[row]["rate"] for r in per_run]
        rows.append(
            [
                labels[row],
                per_run[0][row]["messages"],
                med(row, "seconds"),
                med(row, "rate"),
                spread(rates),
                med(row, "client_cpu_ms"),
                med(row, "sandbox_cpu_ms"),
            ]
        )
    rows.append(
        [
            "(c) steady: first claim→last outcome",
            args.messages,
            med("c", "steady_seconds"),
            med("c", "steady_rate"),
            spread([r["c"]["steady_rate"] for r in per_run]),
            "",
            "",
        ]
    )
    print_table(
        f"send: {args.messages:,} messages, sandbox process at {args.latency_ms:g} ms, "
        f"concurrency {args.concurrency}, median of {runs} run(s)",
        [
            "row",
            "messages",
            "seconds",
            "msgs/s",
            "runs min–max",
            "client CPU ms/msg",
            "sandbox CPU ms/msg",
        ],
        rows,
    )
    ratios = {key: median(r[key] for r in per_run) for key in ("c/b", "c/a", "c_steady/b")}
    print_table(
        "ratios (median of per-run ratios)",
        ["ratio", "value", "runs min–max"],
        [[k, v, spread([r[k] for r in per_run])] for k, v in ratios.items()],
    )
    print(
        f"pipeline CPU per message: {med('c', 'client_cpu_ms'):.3f} ms "
        f"(whole child process incl. ~1 s start-up), peak RSS {med('c', 'maxrss_mb'):.0f} MB"
    )
    goals = [goal("c/b", ratios["c/b"], ">=", 0.90), goal("c/a", ratios["c/a"], ">=", 10)]
    print_goals(goals)
    write_results(
        NAME,
        args,
        {
            "params": {
                "messages": args.messages,
                "naive_messages": args.naive_messages,
                "concurrency": args.concurrency,
                "latency_ms": args.latency_ms,
                "runs": runs,
            },
            "rows": {row: {key: med(row, key) for key in per_run[0][row]} for row in "abc"},
            "ratios": ratios,
            "goals": goals,
            "runs": per_run,
            "notes": [
                "(a) is timed on a sample of naive_messages and reported as msgs/s.",
                "(c) includes interpreter start-up, imports and the migration check; 'steady' is "
                "the database's first sending_at to last sent_at.",
                "client CPU of (c) is the child's rusage (wait4); of (a) and (b) this process's.",
            ],
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
