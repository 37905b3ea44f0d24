"""Charts as inline SVG written in Python: they open offline, in any browser, with nothing to load.

Two shapes cover every chart in the report: horizontal bars (one row per state, code, carrier or
province; a row may be split into coloured parts) and stacked columns over a sequence (time
buckets, latency bins).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT_PX = 13
ROW_PX = 26
BAR_PX = 16
AXIS = "#94a3b8"
GRID = "#e2e8f0"
INK = "#1e293b"
MUTED = "#64748b"


@dataclass(frozen=True)
class Bar:
    """One row of a bar chart: coloured parts laid end to end, a note after them."""

    label: str
    parts: Sequence[tuple[float, str]]  # (value, colour)
    note: str = ""
    hint: str = ""  # shown on hover: the full text when the label is shortened


def text_width(text: str) -> float:
    """Rough rendered width in px: CJK and full-width characters are about twice as wide."""
    wide = sum(1 for ch in text if ord(ch) >= 0x2E80)
    return (len(text) + wide) * FONT_PX * 0.55


def shorten(text: str, limit_px: float) -> str:
    if text_width(text) <= limit_px:
        return text
    while text and text_width(text + "…") > limit_px:
        text = text[:-1]
    return text + "…"


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (
        f'<svg class="chart" role="img" '
        f'aria-label="{escape(label)}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}">' + "".join(body) + "</svg>"
    )


def _text(
    x: float, y: float, text: str, *, anchor: str = "start", fill: str = INK, size: int = 0
) -> str:
    style = f' font-size="{size}"' if size else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{style}>'
        f"{escape(text)}</text>"
    )


def empty(width: float, message: str) -> str:
    """A chart with nothing to show says so, rather than vanishing."""
    return _svg(width, 60, [_text(width / 2, 34, message, anchor="middle", fill=MUTED)], message)


def hbars(bars: Sequence[Bar], *, width: float = 540, share: bool = False, label: str = "") -> str:
    """Horizontal bars; ``share`` scales every row to 100% (composition), else to the longest."""
    if not bars:
        return empty(width, "nothing to show · 暂无数据")
    label_px = min(max(text_width(bar.label) for bar in bars) + 12, width * 0.42)
    note_px = min(max(text_width(bar.note) for bar in bars) + 10, width * 0.32)
    area = width - label_px - note_px
    largest = max(sum(value for value, _ in bar.parts) for bar in bars) or 1
    body = []
    for index, bar in enumerate(bars):
        top = index * ROW_PX
        total = sum(value for value, _ in bar.parts)
        scale = area / (total if share and total else largest)
        name = shorten(bar.label, label_px - 12)
        body.append(f"<g><title>{escape(bar.hint or bar.label)}</title>")
        body.append(_text(label_px - 8, top + ROW_PX / 2 + 4.5, name, anchor="end"))
        x = label_px
        for value, colour in bar.parts:
            if value > 0:
                w = max(value * scale, 1.5)
                y = top + (ROW_PX - BAR_PX) / 2
                body.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{BAR_PX}" '
                    f'fill="{colour}" rx="2"/>'
                )
                x += w
        note_x = label_px + area + 6 if share else x + 6
        body.append(_text(note_x, top + ROW_PX / 2 + 4.5, bar.note, fill=MUTED) + "</g>")
    return _svg(width, len(bars) * ROW_PX + 4, body, label)


def nice_scale(value: float) -> tuple[float, float]:
    """An axis maximum at or above ``value`` in round steps (1, 2 or 5 × 10ⁿ, whole numbers)."""
    raw = max(value, 1) / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = max(next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), 1)
    return step * math.ceil(max(value, 1) / step), step


def columns(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[int], str]],
    *,
    width: float = 1040,
    height: float = 240,
    label: str = "",
) -> str:
    """Stacked columns, one per category; ``series`` is (name, values, colour), bottom first."""
    if not categories:
        return empty(width, "nothing to show · 暂无数据")
    totals = [sum(values[i] for _, values, _ in series) for i in range(len(categories))]
    top, step = nice_scale(max(totals))
    left, bottom, plot_h = 56, 34, height - 44
    plot_w = width - left - 10
    slot = plot_w / len(categories)
    bar_w = max(slot * 0.78, 1)
    body = []
    for tick in range(round(top / step) + 1):
        value = step * tick
        y = 10 + plot_h - value / top * plot_h
        body.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        body.append(_text(left - 6, y + 4, f"{value:,.0f}", anchor="end", fill=MUTED, size=11))
    label_every = max(1, math.ceil(len(categories) * 70 / plot_w))
    for i, category in enumerate(categories):
        x = left + i * slot + (slot - bar_w) / 2
        base = 10 + plot_h
        parts = []
        for name, values, colour in series:
            h = values[i] / top * plot_h
            if h > 0:
                base -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                    f'fill="{colour}"><title>{escape(category)} · {escape(name)}: '
                    f"{values[i]:,}</title></rect>"
                )
        body.extend(parts)
        if i % label_every == 0:
            body.append(
                _text(
                    x + bar_w / 2,
                    height - bottom + 20,
                    category,
                    anchor="middle",
                    fill=MUTED,
                    size=11,
                )
            )
    axis_y = 10 + plot_h
    body.append(
        f'<line x1="{left}" x2="{width - 10}" y1="{axis_y}" y2="{axis_y}" stroke="{AXIS}"/>'
    )
    return _svg(width, height, body, label)


def legend(items: Sequence[tuple[str, str]]) -> str:
    """HTML legend: a coloured swatch and a name per series."""
    return (
        '<div class="legend">'
        + "".join(
            f'<span><i style="background:{colour}"></i>{escape(name)}</span>'
            for name, colour in items
        )
        + "</div>"
    )
