"""What every benchmark shares: options, child processes with their rusage, the sandbox in its own
process, generated recipient files, the bare-``requests`` ceiling, tables and the results file."""

from __future__ import annotations

import argparse
import compileall
import contextlib
import gc
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / "bench" / ".cache"
PYTHON = sys.executable
# The `campaigns` code under test: this checkout, or a frozen copy of a commit made by
# `python -m bench.snapshot` (others edit the working tree while benchmarks run).
CODE_ROOT = Path(os.environ.get("BENCH_CAMPAIGNS_ROOT") or ROOT).resolve()


def prepare() -> None:
    """What a benchmark does when it starts, never at import: put the code under test first on
    the path, make the cache folder, take its children's exit statuses back for itself."""
    _use_code_under_test()
    _ignore_cache()
    _reap_own_children()


def _use_code_under_test() -> None:
    if CODE_ROOT == ROOT or str(CODE_ROOT) in sys.path:
        return
    loaded = sys.modules.get("campaigns")
    if loaded is not None and not str(loaded.__file__).startswith(str(CODE_ROOT)):
        raise RuntimeError(
            f"campaigns was imported from {loaded.__file__} before the benchmark chose "
            f"{CODE_ROOT}: call bench._common.prepare() first"
        )
    sys.path.insert(0, str(CODE_ROOT))


def _ignore_cache() -> None:
    """Like .pytest_cache: the cache ignores itself, so git and ruff never walk its ~1 GB."""
    CACHE.mkdir(parents=True, exist_ok=True)
    marker = CACHE / ".gitignore"
    if not marker.exists():
        marker.write_text("# created by bench/_common.py\n*\n")


def _reap_own_children() -> None:
    """Children are reaped here, with wait4, for their rusage. A parent that ignores SIGCHLD
    passes that on through exec, and then the kernel reaps them first and wait4 fails with
    "No child processes": put the default back (it only concerns this process's children)."""
    if signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)


APP_ID = "bench-app"
APP_SECRET = "bench-secret-not-real"
MESSAGE = "【榛子演示】{name}您好,您的订单{order}已发货,回T退订"
SEND_PATH = "/sms/send.do"
FIND_PATH = "/smslog/findSmsByMessageId.do"
PLAIN_TEXT = "【榛子演示】客户0您好,您的订单DD000000000已发货,回T退订"
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


# -- options and results ----


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes; every benchmark starts here, so this prepares it."""
    prepare()
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=description)
    parser.add_argument("--runs", type=int, default=None, help="repetitions; medians are reported")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run: does it run?")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"results file (default bench/results/{name}.json; with --smoke a file under "
        "bench/.cache so the committed figures are not overwritten)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary databases and logs")
    return parser


def add_pipeline_options(args_parser: argparse.ArgumentParser, command: str) -> None:
    """What send and reconcile both take: campaign size, concurrency (by default that of
    `campaigns COMMAND` in the code under test, for pipeline and ceiling alike), latency."""
    args_parser.add_argument("--messages", type=int, default=20_000, help="campaign size")
    args_parser.add_argument(
        "--concurrency",
        type=int,
        default=cli_default(command, "concurrency"),
        help=f"pipeline and ceiling (default: that of `campaigns {command}` under test)",
    )
    args_parser.add_argument("--latency-ms", type=float, default=20.0)


def output_path(name: str, args: argparse.Namespace) -> Path:
    if args.output is not None:
        return args.output
    if args.smoke:
        return CACHE / "smoke" / f"{name}.json"
    return RESULTS / f"{name}.json"


def median(values: Iterable[float]) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float]) -> str:
    """min–max of the runs, to show the noise beside each median."""
    if len(values) < 2:
        return ""
    return f"{_cell(float(min(values)))}–{_cell(float(max(values)))}"


def goal(name: str, value: float, op: str, target: float) -> dict[str, Any]:
    met = value >= target if op == ">=" else value <= target
    return {"goal": name, "value": round(value, 4), "op": op, "target": target, "met": bool(met)}


def code_version() -> dict[str, Any]:
    """Which code was measured: the snapshot's commit, or this checkout's HEAD and whether the
    package differs from it."""
    marker = CODE_ROOT / ".bench-commit"
    if marker.exists():
        overlay = CODE_ROOT / ".bench-overlay"
        found = {"root": str(CODE_ROOT), "commit": marker.read_text().strip(), "dirty": False}
        if overlay.exists():  # working-tree files laid over the commit (bench.snapshot --with)
            found |= {"dirty": True, "overlay": json.loads(overlay.read_text())}
        return found
    try:
        commit = subprocess.run(
            ["git", "-C", str(CODE_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(CODE_ROOT), "status", "--porcelain", "--", "campaigns", "migrations"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"root": str(CODE_ROOT), "commit": None, "dirty": None}
    return {"root": str(CODE_ROOT), "commit": commit, "dirty": bool(dirty)}


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_results(name: str, args: argparse.Namespace, payload: dict[str, Any]) -> Path:
    path = output_path(name, args)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "smoke": bool(args.smoke),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "code": code_version(),
        **payload,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    print(f"\nfigures written to {path}")
    return path


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print(line)
    for row in cells:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def print_goals(goals: Sequence[dict[str, Any]]) -> None:
    print_table(
        "goals",
        ["goal", "value", "target", "met"],
        [
            [g["goal"], g["value"], f"{g['op']} {g['target']}", "yes" if g["met"] else "NO"]
            for g in goals
        ],
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# -- child processes ----


@dataclass
class Child:
    """A finished child process: wall seconds, its own CPU seconds and peak RSS."""

    returncode: int
    wall: float
    user: float
    system: float
    maxrss_mb: float
    stdout: str
    stderr: str

    @property
    def cpu(self) -> float:
        return self.user + self.system

    def check(self, what: str) -> Child:
        if self.returncode != 0:
            raise RuntimeError(
                f"{what} exited {self.returncode}\n--- stdout\n{self.stdout[-3000:]}"
                f"\n--- stderr\n{self.stderr[-3000:]}"
            )
        return self


def start_child(
    cmd: Sequence[str], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, Any, Any, float]:
    out = tempfile.TemporaryFile()  # noqa: SIM115 - closed by wait_child
    err = tempfile.TemporaryFile()  # noqa: SIM115
    started = time.monotonic()
    proc = subprocess.Popen(list(cmd), cwd=CODE_ROOT, env=env, stdout=out, stderr=err)
    return proc, out, err, started


def wait_child(
    proc: subprocess.Popen, out: Any, err: Any, started: float, timeout: float | None = None
) -> Child:
    """Reap ``proc`` with wait4, which gives this child's own rusage (CPU and ru_maxrss)."""
    timer = None
    if timeout:
        timer = threading.Timer(timeout, lambda: _kill(proc))
        timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:
        status, usage = _reaped_elsewhere(proc)
    finally:
        if timer:
            timer.cancel()
    return _finished(proc, out, err, started, status, usage)


@dataclass
class _NoUsage:
    ru_utime: float = float("nan")
    ru_stime: float = float("nan")
    ru_maxrss: float = float("nan")


def _reaped_elsewhere(proc: subprocess.Popen) -> tuple[int, Any]:
    """The child was reaped by someone else (``Popen.poll``, an ignored SIGCHLD): its status is
    ``proc.returncode`` if that someone was ``subprocess``, and its rusage is lost."""
    print(
        f"warning: child {proc.pid} was reaped elsewhere; its CPU and RSS are unknown",
        file=sys.stderr,
    )
    code = proc.returncode or 0
    status = (-code & 0x7F) if code < 0 else (code & 0xFF) << 8  # a wait status
    return status, _NoUsage()


def _finished(
    proc: subprocess.Popen, out: Any, err: Any, started: float, status: int, usage: Any
) -> Child:
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    texts = []
    for handle in (out, err):
        handle.seek(0)
        texts.append(handle.read().decode("utf-8", errors="replace"))
        handle.close()
    return Child(
        returncode=proc.returncode,
        wall=wall,
        user=usage.ru_utime,
        system=usage.ru_stime,
        maxrss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        stdout=texts[0],
        stderr=texts[1],
    )


def poll_child(proc: subprocess.Popen, out: Any, err: Any, started: float) -> Child | None:
    """The finished child (reaped with its rusage), or None while it runs. Use this rather than
    ``Popen.poll``, which would reap the child and lose its rusage."""
    try:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    except ChildProcessError:
        status, usage = _reaped_elsewhere(proc)
        return _finished(proc, out, err, started, status, usage)
    if not pid:
        return None
    return _finished(proc, out, err, started, status, usage)


def run_child(
    cmd: Sequence[str], env: dict[str, str] | None = None, timeout: float | None = None
) -> Child:
    proc, out, err, started = start_child(cmd, env)
    return wait_child(proc, out, err, started, timeout)


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)


def cli_default(command: str, option: str) -> Any:
    """The default of ``campaigns COMMAND --OPTION`` in the code under test, so that a benchmark
    measures the command as a user runs it unless told otherwise."""
    import click

    from campaigns.cli import cli

    context = click.Context(cli)
    for param in cli.get_command(context, command).params:
        if param.name == option.replace("-", "_"):
            return param.default
    raise KeyError(f"campaigns {command} has no --{option}")


def campaigns_cmd(*args: str) -> list[str]:
    return [PYTHON, "-m", "campaigns", *args]


def cli_env(db_path: Path, api_url: str = "http://127.0.0.1:9") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZHENZI_", "CAMPAIGNS_"))}
    env.update(
        CAMPAIGNS_DB=f"sqlite:///{db_path}",
        ZHENZI_API_URL=api_url,
        ZHENZI_APP_ID=APP_ID,
        ZHENZI_APP_SECRET=APP_SECRET,
        PYTHONUNBUFFERED="1",
    )
    return env


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a running process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


# -- the sandbox in its own process ----


class SandboxProcess:
    """``python -m campaigns sandbox`` in a child process; its URL is its first stdout line."""

    def __init__(
        self,
        *,
        latency_ms: float,
        delivery_delay: float = 1.0,
        balance: int = 10**9,
        extra: Sequence[str] = (),
    ) -> None:
        self.cmd = campaigns_cmd(
            "sandbox",
            "--port", "0",
            "--app-id", APP_ID,
            "--app-secret", APP_SECRET,
            "--balance", str(balance),
            "--latency-ms", str(latency_ms),
            "--daily-limit", "0",
            "--delivery-delay", str(delivery_delay),
            *extra,
        )  # fmt: skip
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.cpu_total = float("nan")

    def __enter__(self) -> SandboxProcess:
        self.proc = subprocess.Popen(
            self.cmd, cwd=CODE_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.proc.kill()
            raise RuntimeError(f"sandbox did not start: {self.url!r}")
        return self

    @property
    def cpu(self) -> float:
        assert self.proc is not None
        return process_cpu(self.proc.pid)

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        usage = None
        while usage is None:
            try:
                pid, _, rusage = os.wait4(self.proc.pid, os.WNOHANG)
                if pid:
                    usage = rusage
                elif time.monotonic() > deadline:
                    self.proc.kill()
                    _, _, usage = os.wait4(self.proc.pid, 0)
                else:
                    time.sleep(0.02)
            except ChildProcessError:
                usage = _reaped_elsewhere(self.proc)[1]
        self.cpu_total = usage.ru_utime + usage.ru_stime
        self.proc.returncode = 0
        if self.proc.stdout:
            self.proc.stdout.close()


# -- recipients and databases ----


def phones(count: int, start: int = 0) -> list[str]:
    """Distinct valid mainland mobile numbers (an affine walk over 10^8, so no repeats)."""
    prefixes = ("138", "139", "150", "186", "177", "199")
    return [
        f"{prefixes[(start + i) % len(prefixes)]}{((start + i) * 7919 + 12345) % 10**8:08d}"
        for i in range(count)
    ]


def write_recipients(path: Path, count: int) -> Path:
    """A clean CSV (all valid, no duplicates) of ``count`` recipients: phone,name,order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("phone,name,order\n")
        for i, phone in enumerate(phones(count)):
            handle.write(f"{phone},客户{i},DD{i:09d}\n")
    return path


def import_campaign(db_path: Path, csv_path: Path, name: str) -> None:
    """Import with the library, in this process (the campaign under test is set up, not timed)."""
    from campaigns import api
    from campaigns.config import Settings

    api.import_file(
        Settings(db_url=f"sqlite:///{db_path}"), csv_path, campaign=name, message=MESSAGE
    )


def checkpoint(db_path: Path) -> None:
    """Fold the WAL into the main file so that one file copy is the whole database."""
    with contextlib.closing(sqlite3.connect(db_path)) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def copy_db(src: Path, dst: Path) -> Path:
    checkpoint(src)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    return dst


def state_counts(db_path: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(db_path)) as con:
        return dict(con.execute("SELECT state, count(*) FROM messages GROUP BY state").fetchall())


def message_ids(db_path: Path, state: str | None = None) -> list[str]:
    query = "SELECT message_id FROM messages WHERE message_id IS NOT NULL"
    params: tuple[str, ...] = ()
    if state:
        query += " AND state = ?"
        params = (state,)
    with contextlib.closing(sqlite3.connect(db_path)) as con:
        return [row[0] for row in con.execute(query + " ORDER BY id", params)]


@contextlib.contextmanager
def workdir(name: str, keep: bool):
    # Byte-compile the code under test, as `pip install` does: with PYTHONDONTWRITEBYTECODE set
    # (this machine sets it) every start would compile the package again, 20-35 ms no user pays.
    compileall.compile_dir(CODE_ROOT / "campaigns", quiet=1)
    path = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


# -- the bare-requests ceiling ----


@dataclass
class Pool:
    """Outcome of a bare thread pool run: wall seconds and answers that were not code 0."""

    seconds: float
    requests: int
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def bare_pool(url: str, forms: Sequence[dict[str, str]], concurrency: int) -> Pool:
    """POST every form with ``concurrency`` threads, each with its own keep-alive Session.

    No database, no limiter, no retries, no parsing beyond checking the reply's code: the most
    a Python client with this many threads can get out of this server.
    """
    import requests

    lock = threading.Lock()
    items = iter(forms)
    errors: list[str] = []

    def worker() -> None:
        session = requests.Session()
        while True:
            with lock:
                form = next(items, None)
            if form is None:
                session.close()
                return
            reply = session.post(url, data=form, headers=FORM_HEADERS, timeout=30)
            if reply.status_code != 200 or reply.json().get("code") != 0:
                with lock:
                    errors.append(reply.text[:200])

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    return Pool(seconds, len(forms), len(errors), errors[:3])


def send_form(phone: str, message_id: str, message: str = PLAIN_TEXT) -> dict:
    return {
        "appId": APP_ID,
        "appSecret": APP_SECRET,
        "number": phone,
        "message": message,
        "messageId": message_id,
    }


def find_form(message_id: str) -> dict:
    return {"appId": APP_ID, "appSecret": APP_SECRET, "messageId": message_id}


@contextlib.contextmanager
def no_gc_pauses():
    """No garbage collection in this process while a measurement runs.

    The in-process sandbox (rate, resume) times arrivals in this process; a full collection of
    this process's objects stopped it for 40-80 ms, and the requests that waited were recorded
    together when it ended, as a burst the sender never made. Reference counting still frees
    almost everything; the cycles wait until the block ends.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.monotonic()
    result = fn()
    return time.monotonic() - started, result
