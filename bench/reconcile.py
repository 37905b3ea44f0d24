"""Reconcile throughput: ``campaigns reconcile`` against bare ``requests`` lookups.

The sandbox runs in its own process (``campaigns sandbox``, 20 ms latency, delivery final at once).
Set-up, not timed as a goal: a campaign of ``--messages`` is imported and really sent through the
pipeline (``campaigns send --concurrency 32``), so that every messageId is one the sandbox
accepted and every lookup returns a full record; the database is then kept as a snapshot. Each
run restores the snapshot and measures:

(b) the ceiling: ``--concurrency`` threads (default: ``campaigns reconcile``'s own) with
    keep-alive sessions posting ``findSmsByMessageId`` for every messageId, no database;
(c) ``campaigns reconcile`` in a child process, end to end, recording every outcome.

Goal (issue 5): c/b >= 0.9.
"""

from __future__ import annotations

from bench._common import (
    FIND_PATH,
    SandboxProcess,
    add_pipeline_options,
    bare_pool,
    campaigns_cmd,
    cli_env,
    copy_db,
    find_form,
    goal,
    import_campaign,
    median,
    message_ids,
    parser,
    print_goals,
    print_table,
    run_child,
    spread,
    state_counts,
    workdir,
    write_recipients,
    write_results,
)

NAME = "reconcile"
CAMPAIGN = "bench-reconcile"


def main(argv: list[str] | None = None) -> int:
    args_parser = parser(NAME, __doc__.split("\n\n")[0])
    add_pipeline_options(args_parser, "reconcile")
    args = args_parser.parse_args(argv)
    if args.smoke:
        args.messages, args.runs = 200, 1
    runs = args.runs or 3
    per_run: list[dict] = []
    with (
        workdir(NAME, args.keep) as work,
        SandboxProcess(latency_ms=args.latency_ms, delivery_delay=0) as sandbox,
    ):
        snapshot = work / "sent.db"
        import_campaign(snapshot, write_recipients(work / "r.csv", args.messages), CAMPAIGN)
        setup = run_child(
            campaigns_cmd("send", CAMPAIGN, "--concurrency", "32"),
            env=cli_env(snapshot, sandbox.url),
            timeout=3600,
        ).check("set-up send")
        ids = message_ids(snapshot, "sent")
        if len(ids) != args.messages:
            raise RuntimeError(f"set-up sent {len(ids)} of {args.messages}")
        print(f"set-up: sent {len(ids):,} in {setup.wall:.1f} s", flush=True)
        forms = [find_form(message_id) for message_id in ids]
        for run in range(runs):
            sandbox_cpu = sandbox.cpu
            pool = bare_pool(sandbox.url + FIND_PATH, forms, args.concurrency)
            ceiling = {
                "lookups": len(forms),
                "seconds": pool.seconds,
                "rate": pool.rate,
                "errors": pool.errors,
                "sandbox_cpu_ms": 1000 * (sandbox.cpu - sandbox_cpu) / len(forms),
            }
            db_path = copy_db(snapshot, work / f"run{run}.db")
            sandbox_cpu = sandbox.cpu
            child = run_child(
                campaigns_cmd("reconcile", CAMPAIGN, "--concurrency", str(args.concurrency)),
                env=cli_env(db_path, sandbox.url),
                timeout=3600,
            ).check("campaigns reconcile")
            counts = state_counts(db_path)
            final = counts.get("delivered", 0) + counts.get("undelivered", 0)
            pipeline = {
                "lookups": len(forms),
                "seconds": child.wall,
                "rate": len(forms) / child.wall,
                "cpu_ms": 1000 * child.cpu / len(forms),
                "maxrss_mb": child.maxrss_mb,
                "final": final,
                "sandbox_cpu_ms": 1000 * (sandbox.cpu - sandbox_cpu) / len(forms),
            }
            if final != len(forms):
                raise RuntimeError(f"reconcile left {counts}")
            figures = {"b": ceiling, "c": pipeline, "c/b": pipeline["rate"] / ceiling["rate"]}
            per_run.append(figures)
            print(
                f"run {run + 1}/{runs}: b {ceiling['rate']:.1f}/s  c {pipeline['rate']:.1f}/s  "
                f"c/b {figures['c/b']:.3f}",
                flush=True,
            )

    def med(row: str, key: str) -> float:
        return median(r[row][key] for r in per_run)

    ratio = median(r["c/b"] for r in per_run)
    print_table(
        f"reconcile: {args.messages:,} sent messages, sandbox process at {args.latency_ms:g} ms, "
        f"concurrency {args.concurrency}, median of {runs} run(s)",
        [
            "row",
            "lookups",
            "seconds",
            "lookups/s",
            "runs min–max",
            "client CPU ms/lookup",
            "sandbox CPU ms/lookup",
        ],
        [
            [
                f"(b) ceiling: {args.concurrency} threads x Session",
                args.messages,
                med("b", "seconds"),
                med("b", "rate"),
                spread([r["b"]["rate"] for r in per_run]),
                "",
                med("b", "sandbox_cpu_ms"),
            ],
            [
                "(c) campaigns reconcile, end to end",
                args.messages,
                med("c", "seconds"),
                med("c", "rate"),
                spread([r["c"]["rate"] for r in per_run]),
                med("c", "cpu_ms"),
                med("c", "sandbox_cpu_ms"),
            ],
        ],
    )
    print(f"c/b = {ratio:.3f} (runs {spread([r['c/b'] for r in per_run])})")
    goals = [goal("c/b", ratio, ">=", 0.9)]
    print_goals(goals)
    write_results(
        NAME,
        args,
        {
            "params": {
                "messages": args.messages,
                "concurrency": args.concurrency,
                "latency_ms": args.latency_ms,
                "runs": runs,
            },
            "rows": {
                "b": {k: med("b", k) for k in per_run[0]["b"]},
                "c": {k: med("c", k) for k in per_run[0]["c"]},
            },
            "ratios": {"c/b": ratio},
            "goals": goals,
            "setup_send_seconds": setup.wall,
            "runs": per_run,
            "notes": [
                "Every messageId was really sent first (set-up), so each lookup returns a record.",
                "(c) includes interpreter start-up, imports and the migration check.",
            ],
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
