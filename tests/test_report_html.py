"""The HTML report opened in a real headless Chromium, offline: are the charts actually drawn?

Chromium takes two screenshots, one of the report and one of the same page with its SVG charts
hidden; the pixels that differ are what the charts drew.  Debian's ``chromium`` must be installed
(``make test`` does it): without it these tests fail rather than skip, so a machine that cannot
show the charts never passes for one that can.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from campaigns.reports import ReportData, write_report
from tests.test_reports import status_of, synthetic_frame

WINDOW = (1200, 2000)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
]
HIDE_CHARTS = "<style>svg.chart{visibility:hidden}</style></head>"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "headless Chromium is needed to check the HTML report's charts: "
            "apt-get install -y chromium fonts-wqy-microhei (make test installs it)"
        )
    return found


def run_chromium(page: Path, profile: Path, *action: str) -> subprocess.CompletedProcess:
    command = [chromium(), *FLAGS, f"--user-data-dir={profile}", *action, page.as_uri()]
    result = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result


def screenshot(page: Path, tmp_path: Path) -> np.ndarray:
    png = tmp_path / f"{page.stem}.png"
    run_chromium(page, tmp_path / f"profile-{page.stem}", f"--screenshot={png}")
    return decode_png(png.read_bytes())


def decode_png(data: bytes) -> np.ndarray:
    """8-bit RGB(A) PNG → (height, width, channels) array; no imaging library needed."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunks.setdefault(kind, []).append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    channels = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks[b"IDAT"])), dtype=np.uint8)
    lines = raw.reshape(height, 1 + width * channels)
    image = np.zeros((height, width * channels), dtype=np.uint8)
    previous = np.zeros(width * channels, dtype=np.int64)
    for y, (kind, line) in enumerate(zip(lines[:, 0], lines[:, 1:].astype(np.int64), strict=True)):
        if kind == 0:
            row = line
        elif kind == 1:  # Sub: a running sum per channel
            row = np.cumsum(line.reshape(width, channels), axis=0).reshape(-1)
        elif kind == 2:  # Up
            row = line + previous
        else:  # Average (3) and Paeth (4) depend on the byte just decoded: byte by byte
            row = unfilter_sequential(int(kind), line.tolist(), previous.tolist(), channels)
        previous = np.asarray(row, dtype=np.int64) % 256
        image[y] = previous
    return image.reshape(height, width, channels)


def unfilter_sequential(kind: int, line: list[int], up: list[int], channels: int) -> np.ndarray:
    out = [0] * len(line)
    for i, value in enumerate(line):
        left = out[i - channels] if i >= channels else 0
        corner = up[i - channels] if i >= channels else 0
        if kind == 3:
            out[i] = (value + (left + up[i]) // 2) % 256
        else:
            p = left + up[i] - corner
            pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - corner)
            guess = left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner
            out[i] = (value + guess) % 256
    return np.array(out, dtype=np.int64)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    frame = synthetic_frame(5000, seed=3)
    path = tmp_path_factory.mktemp("html") / "双十一.html"
    write_report(ReportData(frame, status_of(frame), "【店铺】{姓名}您好,订单已发货"), path)
    return path


def test_html_is_one_self_contained_utf8_file(report):
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and '<meta charset="utf-8">' in text
    for fetches in ("<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import"):
        assert fetches not in text, fetches
    assert "短信活动报告 · 双十一" in text and "中国移动" in text and "WenQuanYi Micro Hei" in text
    assert len(re.findall(r'<svg class="chart"', text)) >= 6


def test_browser_reads_the_page_as_utf8_with_every_chart(report, tmp_path):
    dom = run_chromium(report, tmp_path / "profile", "--dump-dom").stdout.decode()
    assert "短信活动报告 · 双十一" in dom  # a wrong charset would turn this into mojibake
    charts = re.findall(r'<svg class="chart".*?</svg>', dom, flags=re.S)
    labels = [re.search(r'aria-label="([^"]*)"', chart).group(1) for chart in charts]
    assert labels == [
        "messages by state",
        "errors by code",
        "send rate",
        "time to receipt",
        "delivery by carrier",
        "delivery by province",
    ]
    assert all(chart.count("<rect") >= 3 for chart in charts)


def test_browser_draws_the_charts(report, tmp_path):
    plain = report.with_name("no-charts.html")
    plain.write_text(report.read_text(encoding="utf-8").replace("</head>", HIDE_CHARTS, 1))
    drawn, hidden = screenshot(report, tmp_path), screenshot(plain, tmp_path)
    assert drawn.shape[:2] == (WINDOW[1], WINDOW[0])
    changed = np.any(drawn[..., :3] != hidden[..., :3], axis=2)
    assert changed.sum() > 60_000, "the charts drew almost nothing"
    # Drawn in many places down the page, not one blob: count 100-px bands with chart pixels.
    bands = changed.reshape(WINDOW[1] // 100, 100, WINDOW[0]).sum(axis=(1, 2))
    assert (bands > 1_000).sum() >= 8, bands.tolist()
    coloured = drawn[changed][:, :3].astype(int)
    green = (coloured[:, 1] > coloured[:, 0] + 60) & (coloured[:, 1] > coloured[:, 2] + 60)
    assert green.sum() > 10_000  # the delivered bars are there, in their colour


def test_html_for_a_campaign_not_sent_yet(tmp_path):
    frame = synthetic_frame(50)
    frame["state"] = "pending"
    frame[["sent_at", "final_at"]] = pd.NaT
    frame["error_code"] = None
    path = tmp_path / "new.html"
    write_report(ReportData(frame, status_of(frame), "hi"), path)
    text = path.read_text(encoding="utf-8")
    assert text.count("nothing to show · 暂无数据") >= 2  # send rate and time to receipt
    assert "送达率 delivery rate" in text and "—" in text  # no receipts yet: no rate
