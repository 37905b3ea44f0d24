"""``campaigns demo``: a whole campaign against an in-process sandbox, in under a minute."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

from campaigns import api
from campaigns.config import Secret, Settings
from campaigns.errors import UserError
from campaigns.provider.sandbox import Sandbox, SandboxConfig
from campaigns.sending import SendOptions, SendProgress
from campaigns.store.models import SENT

CAMPAIGN = "demo"
MESSAGE = "【榛子演示】{姓名}您好,您的订单{订单号}已发货,请留意查收。回T退订"
DELIVERY_WAIT_S = 20.0


@dataclass
class DemoResult:
    folder: Path
    imported: api.ImportSummary
    sent: SendProgress
    status: api.CampaignStatus
    reports: list[Path]
    ledger: Path


def sample_file() -> Path:
    return Path(str(resources.files("campaigns.sample_data") / "recipients.csv"))


def new_folder(parent: Path | None = None) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = (parent or Path.cwd()) / "demo-output" / stamp
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def command_hint() -> tuple[str, str]:
    """How to call ``campaigns`` from the user's shell, where the venv is often not active:
    the command, and any advice to go with it."""
    beside_python = Path(sys.executable).parent / "campaigns"
    in_venv = sys.prefix != sys.base_prefix
    if beside_python.is_file() and (in_venv or not shutil.which("campaigns")):
        shown = os.path.relpath(beside_python)
        return shlex.quote(str(beside_python) if shown.startswith("..") else shown), ""
    if shutil.which("campaigns"):
        return "campaigns", ""
    return "campaigns", "; activate the virtual environment campaigns is installed in first"


def run_demo(
    folder: Path,
    *,
    say: Callable[[str], None] = lambda _: None,
) -> DemoResult:
    """Sandbox with a little latency and a few faults → import → send → reconcile → report."""
    if (folder / "campaigns.db").exists():
        raise UserError(f"{folder} already holds a demo; give another --folder or remove it")
    ledger = folder / "sandbox-ledger.jsonl"
    config = SandboxConfig(
        latency_ms=20,
        ledger=str(ledger),
        delivery_delay_s=1.0,
        undelivered_share=0.05,
        fail_1000=0.02,
        fail_5xx=0.02,
        drop_after_accept=0.01,
        seed=2026,
    )
    with Sandbox(config) as sandbox:
        say(f"sandbox serving {sandbox.url} (20 ms latency, 2% code 1000, 2% HTTP 502, 1% dropped)")
        settings = Settings(
            db_url=f"sqlite:///{folder / 'campaigns.db'}",
            api_url=sandbox.url,
            app_id=config.app_id,
            app_secret=Secret(config.app_secret),
            lookup_wait=1.0,  # the sandbox shows a new SMS at once
        )
        imported = api.import_file(settings, sample_file(), campaign=CAMPAIGN, message=MESSAGE)
        say(
            f"imported {imported.rows} rows: {imported.accepted} accepted, "
            f"{imported.rejected_total} rejected"
        )
        sent = api.send(settings, CAMPAIGN, SendOptions(rate=100, concurrency=8))
        say(f"sent {sent.sent}, failed {sent.failed}; waiting for delivery reports…")
        _reconcile_until_final(settings)
        reports = [folder / "report.xlsx", folder / "report.csv", folder / "report.html"]
        for path in reports:
            api.report(settings, CAMPAIGN, path)
        return DemoResult(folder, imported, sent, api.status(settings, CAMPAIGN), reports, ledger)


def _reconcile_until_final(settings: Settings) -> None:
    deadline = time.monotonic() + DELIVERY_WAIT_S
    while time.monotonic() < deadline:
        api.reconcile(settings, CAMPAIGN, rate=200)
        if api.status(settings, CAMPAIGN).by_state[SENT] == 0:
            return
        time.sleep(0.5)  # the sandbox decides deliveries ~1 s after acceptance
