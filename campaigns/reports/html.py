"""One self-contained HTML page for management: the summary and its charts, readable offline.

No scripts, fonts or styles are fetched: the charts are inline SVG and the CSS is in the page.
Chinese renders with whichever common CJK font the reader's system has.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from pathlib import Path

import pandas as pd

from campaigns.provider.codes import describe
from campaigns.reports import charts
from campaigns.reports.charts import Bar
from campaigns.reports.summary import BUCKETS, STATE_LABELS, Summary
from campaigns.reports.table import TIMEZONE
from campaigns.store.models import DELIVERED, FAILED, SENT, UNDELIVERED

STATE_COLOURS = {
    "invalid": "#94a3b8",
    "suppressed": "#64748b",
    "pending": "#cbd5e1",
    "deferred": "#a5b4fc",
    "sending": "#93c5fd",
    "sent": "#3b82f6",
    "failed": "#dc2626",
    "delivered": "#16a34a",
    "undelivered": "#f59e0b",
    "expired": "#fb923c",
    "cancelled": "#475569",
}
# How a carrier's or province's messages ended, in the order the bars stack.
OUTCOMES = {
    DELIVERED: (STATE_LABELS[DELIVERED], STATE_COLOURS[DELIVERED]),
    UNDELIVERED: (STATE_LABELS[UNDELIVERED], STATE_COLOURS[UNDELIVERED]),
    FAILED: (STATE_LABELS[FAILED], STATE_COLOURS[FAILED]),
    "awaiting": ("未出结果 · awaiting", "#cbd5e1"),
}
# Short Chinese names for import's reject reasons, to label the errors chart (the details table
# below it gives the full sentence).
REASON_NAMES = {
    "empty": "号码为空",
    "excel_scientific": "Excel科学计数法",
    "not_a_number": "不是号码",
    "wrong_length": "位数不对",
    "landline": "固定电话",
    "international": "境外号码",
    "international_invalid": "境外号码无效",
    "not_mobile": "非手机号段",
    "duplicate": "重复号码",
    "empty_field": "变量为空",
    "too_long": "内容过长",
}
FONTS = (
    '-apple-system, "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", '
    '"Source Han Sans SC", "WenQuanYi Micro Hei", "Segoe UI", Roboto, Arial, sans-serif'
)
CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f1f5f9;color:#1e293b;font:14px/1.5 FONTS}
main{max-width:1140px;margin:0 auto;padding:28px 24px 40px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:16px;margin:0 0 12px}
.sub{color:#64748b;margin:0}
blockquote{margin:14px 0 0;padding:10px 14px;background:#fff;border-left:4px solid #3b82f6;
  border-radius:6px;white-space:pre-wrap}
.kpis{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin:20px 0}
.kpi{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px #0000000f}
.kpi b{display:block;font-size:26px;line-height:1.2}
.kpi span{color:#64748b;font-size:13px}
.kpi.good b{color:#16a34a}.kpi.bad b{color:#dc2626}.kpi.warn b{color:#d97706}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px;margin-bottom:16px}
.card{background:#fff;border-radius:10px;padding:16px 18px;margin:0 0 16px;
  box-shadow:0 1px 2px #0000000f;overflow-x:auto}
.grid .card{margin:0}
.chart{display:block;max-width:100%;height:auto;font-family:inherit;font-size:13px}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin-top:8px;color:#475569;font-size:13px}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px}
.note{color:#64748b;font-size:13px;margin:8px 0 0}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:5px 8px;border-bottom:1px solid #e2e8f0;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
td.text{text-align:left;white-space:normal}
th{background:#f8fafc;color:#475569;font-weight:600}
footer{color:#94a3b8;font-size:12px;margin-top:24px}
.warnings{margin:16px 0 0;padding:10px 16px;background:#fffbeb;border-left:4px solid #d97706;
  border-radius:6px}
.warnings h2{color:#b45309;margin:0 0 4px}.warnings ul{margin:0;padding-left:20px}
@media print{body{background:#fff}.card,.kpi{box-shadow:none;border:1px solid #e2e8f0}}
""".replace("FONTS", FONTS)


def _percent(rate: float | None) -> str:
    return "—" if rate is None or pd.isna(rate) else f"{rate:.1%}"


def _when(stamp: datetime | None) -> str:
    return "—" if stamp is None else stamp.strftime("%Y-%m-%d %H:%M:%S")


def _kpis(summary: Summary) -> str:
    states = summary.by_state
    unfinished = states["pending"] + states["sending"] + states[SENT]
    tiles = [  # (tone when the figure is not zero, figure, name)
        ("", summary.total, "收件人 recipients"),
        ("good", summary.delivery_rate, "送达率 delivery rate (of receipts)"),
        ("good", states[DELIVERED], "已送达 delivered"),
        ("warn", states[UNDELIVERED], "未送达 undelivered"),
        ("bad", states[FAILED], "发送失败 refused by the provider"),
        ("", states["invalid"], "导入被拒 rejected at import"),
        ("", unfinished, "未完成 not sent or awaiting receipt"),
        ("", summary.segments_used, "计费条数 segments used"),
    ]
    return (
        '<section class="kpis">'
        + "".join(
            f'<div class="kpi {tone if figure else ""}"><b>'
            f"{_percent(figure) if isinstance(figure, float) or figure is None else f'{figure:,}'}"
            f"</b><span>{escape(name)}</span></div>"
            for tone, figure, name in tiles
        )
        + "</section>"
    )


def _card(title: str, body: str, note: str = "") -> str:
    note_html = f'<p class="note">{escape(note)}</p>' if note else ""
    return f'<figure class="card"><h2>{escape(title)}</h2>{body}{note_html}</figure>'


def _states_chart(summary: Summary) -> str:
    total = summary.total or 1
    outcome_first = (DELIVERED, UNDELIVERED, FAILED, SENT, "sending", "pending", "invalid")
    bars = [
        Bar(
            STATE_LABELS[state], [(count, STATE_COLOURS[state])], f"{count:,} · {count / total:.1%}"
        )
        for state in outcome_first
        if (count := summary.by_state[state])
    ]
    return charts.hbars(bars, label="messages by state")


def _short_name(code: str, meaning: str) -> str:
    if code.isdigit():
        return describe(int(code)).chinese
    return REASON_NAMES.get(code.split(":")[0], meaning)


def _errors_chart(summary: Summary) -> str:
    rejected, refused = STATE_COLOURS["invalid"], STATE_COLOURS[FAILED]
    bars = [
        Bar(
            f"{_short_name(code, meaning)} · {code}",
            [(count, refused if code.isdigit() else rejected)],
            f"{count:,}",
            hint=f"{code}: {meaning}",
        )
        for code, meaning, count in summary.errors
    ] + [
        Bar(f"回执 {receipt}", [(count, STATE_COLOURS[UNDELIVERED])], f"{count:,}", hint=receipt)
        for receipt, count in summary.receipts
    ]
    legend = charts.legend(
        [
            ("导入被拒 rejected at import", rejected),
            ("发送失败 provider code", refused),
            ("未送达回执 undelivered receipt", STATE_COLOURS[UNDELIVERED]),
        ]
    )
    return charts.hbars(bars, label="errors by code") + legend


def _time_label(stamps: pd.DatetimeIndex) -> list[str]:
    if len(stamps) and stamps[0].date() != stamps[-1].date():
        return list(stamps.strftime("%m-%d %H:%M"))
    fine = len(stamps) > 1 and (stamps[1] - stamps[0]) < pd.Timedelta("1min")
    return list(stamps.strftime("%H:%M:%S" if fine else "%H:%M"))


def _send_rate_note(summary: Summary) -> str:
    totals = summary.send_rate.sum(axis=1)
    if totals.empty:
        return ""
    seconds = pd.Timedelta(summary.send_bucket).total_seconds()
    return (
        f"峰值 peak {totals.max() / seconds:,.1f} 条/秒 msg/s · "
        f"平均 average {totals.mean() / seconds:,.1f} 条/秒 msg/s · "
        "柱的颜色为短信的最终状态 · bars are coloured by what became of the messages"
    )


def _latency_note(summary: Summary) -> str:
    if summary.latency_quantiles is None:
        return ""
    median, p90 = summary.latency_quantiles
    return f"中位数 median {median:,.0f} s · 90% 在 {p90:,.0f} s 内 (90% within {p90:,.0f} s)"


def _send_rate_chart(summary: Summary) -> str:
    rate = summary.send_rate
    series = [
        (STATE_LABELS[state], rate[state].tolist(), STATE_COLOURS[state])
        for state in (DELIVERED, UNDELIVERED, SENT)
    ]
    chart = charts.columns(_time_label(pd.DatetimeIndex(rate.index)), series, label="send rate")
    return chart + charts.legend([(name, colour) for name, _, colour in series])


def _latency_chart(summary: Summary) -> str:
    latency = summary.latency
    series = [
        (STATE_LABELS[state], latency[state].tolist(), STATE_COLOURS[state])
        for state in (DELIVERED, UNDELIVERED)
    ]
    chart = charts.columns(list(latency.index), series, width=540, label="time to receipt")
    return chart + charts.legend([(name, colour) for name, _, colour in series])


def _composition_chart(table: pd.DataFrame, what: str, width: float = 540) -> str:
    """Each group's messages split by outcome, as 100% bars: a bad group shows more colour."""
    bars = [
        Bar(
            str(name),
            [(row[key], colour) for key, (_, colour) in OUTCOMES.items()],
            f"送达率 {_percent(row['delivery_rate'])} · {int(row['messages']):,} 条",
        )
        for name, row in table.iterrows()
    ]
    legend = charts.legend(list(OUTCOMES.values()))
    return charts.hbars(bars, width=width, share=True, label=f"delivery by {what}") + legend


def _breakdown_table(table: pd.DataFrame, first: str) -> str:
    head = "".join(
        f"<th>{escape(title)}</th>"
        for title in (
            first,
            "条数 messages",
            *(title for title, _ in OUTCOMES.values()),
            "送达率 delivery rate",
            "失败率 failure rate",
        )
    )
    body = "".join(
        f"<tr><td>{escape(str(name))}</td><td>{int(row['messages']):,}</td>"
        + "".join(f"<td>{int(row[key]):,}</td>" for key in OUTCOMES)
        + f"<td>{_percent(row['delivery_rate'])}</td><td>{_percent(row['failure_rate'])}</td></tr>"
        for name, row in table.iterrows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _errors_table(summary: Summary) -> str:
    rows = "".join(
        f'<tr><td>{escape(code)}</td><td class="text">{escape(meaning)}</td><td>{count:,}</td></tr>'
        for code, meaning, count in summary.errors
    )
    if not rows:
        return ""
    head = "<tr><th>代码 code</th><th>含义 meaning</th><th>条数 messages</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _warnings(summary: Summary) -> str:
    """What import warned about the texts, where management reads it too."""
    if not summary.warnings:
        return ""
    items = "".join(f"<li>{escape(warning)}</li>" for warning in summary.warnings)
    return f'<section class="warnings"><h2>注意 · Warnings</h2><ul>{items}</ul></section>'


def page(summary: Summary) -> str:
    """The whole report page as one string."""
    times = (
        f"创建 created {_when(summary.created_at)} · 开始 started {_when(summary.started_at)} · "
        f"完成 finished {_when(summary.finished_at)} · {TIMEZONE} (北京时间)"
    )
    delivery_note = (
        f"送达率 = 已送达 ÷ (已送达 + 未送达) = {_percent(summary.delivery_rate)}; "
        f"已送达 ÷ 已发送 delivered of sent = {_percent(summary.delivered_of_sent)}"
    )
    sections = [
        f"<header><h1>短信活动报告 · {escape(summary.campaign)}</h1>"
        f'<p class="sub">{escape(times)}</p>'
        f"<blockquote>{escape(summary.template)}</blockquote></header>",
        _warnings(summary),
        _kpis(summary),
        '<section class="grid">',
        _card("各状态数量 · Messages by state", _states_chart(summary), delivery_note),
        _card("失败原因 · Errors by code", _errors_chart(summary)),
        "</section>",
        _card(
            f"发送速率 · Messages sent per {BUCKETS[summary.send_bucket]}",
            _send_rate_chart(summary),
            _send_rate_note(summary),
        ),
        '<section class="grid">',
        _card(
            "送达用时 · Time from send to receipt", _latency_chart(summary), _latency_note(summary)
        ),
        _card("按运营商 · Delivery by carrier", _composition_chart(summary.by_carrier, "carrier")),
        "</section>",
        _card(
            "按省份 · Delivery by province",
            _composition_chart(summary.by_province, "province", 1040),
            "按失败条数排序 · most failures first",
        ),
        _card(
            "运营商明细 · Carrier details", _breakdown_table(summary.by_carrier, "运营商 carrier")
        ),
        _card(
            "省份明细 · Province details", _breakdown_table(summary.by_province, "省份 province")
        ),
        _card("错误代码 · Error codes", _errors_table(summary)) if summary.errors else "",
        f"<footer>{escape(summary.campaign)} · 报表生成 generated {_when(summary.generated_at)} · "
        f"{summary.rows:,} rows · {escape(summary.scope)}"
        "</footer>",
    ]
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(summary.campaign)} · 短信活动报告</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(sections)}</main></body></html>"
    )


def write(rows: pd.DataFrame, summary: Summary, output: Path) -> None:
    """The page; recipient rows stay in the CSV/XLSX (a million rows is no web page)."""
    output.write_text(page(summary), encoding="utf-8")
