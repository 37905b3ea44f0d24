"""XLSX: a Summary sheet that answers "how did it go, and where did it fail?", then every recipient.

Phones, messageIds and the input's own columns are text cells, so Excel never turns 13800138000
into 1.38E+10, and text that looks like a formula stays text: cells, headers, the campaign's name,
its template and warnings alike.  Times are real date cells.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from datetime import datetime
from io import BytesIO
from itertools import chain
from pathlib import Path
from xml.etree import ElementTree
from zipfile import ZIP_DEFLATED, ZipFile

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from campaigns.reports.cells import NOT_XML
from campaigns.reports.rows import Rows
from campaigns.reports.summary import STATE_LABELS, Summary
from campaigns.reports.table import TIMEZONE

TITLE = Font(bold=True, size=15)
BOLD = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="E2E8F0")
WRAP = Alignment(wrap_text=True, vertical="top")
PERCENT = "0.0%"
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
SAMPLE_ROWS = 2000  # rows looked at to size the columns
ROWS_PER_SHEET = 1_048_575  # Excel's limit is 1,048,576 rows, one of them the header
BREAKDOWN_HEADERS = {
    "messages": "messages 条数",
    "delivered": "delivered 已送达",
    "undelivered": "undelivered 未送达",
    "failed": "failed 发送失败",
    "awaiting": "awaiting 未出结果",
    "delivery_rate": "delivery rate 送达率",
    "failure_rate": "failure rate 失败率",
}


def _cell(sheet: WriteOnlyWorksheet, value: object, **style: object) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value)
    for name, setting in style.items():
        setattr(cell, name, setting)
    return cell


def _text(sheet: WriteOnlyWorksheet, text: str, **style: object) -> WriteOnlyCell | str:
    """Text from outside (a name, a template, a receipt) exactly as given, never a formula.

    openpyxl stores "=…" as a formula and "#N/A" as an error value unless told it is text.
    """
    text = re.sub(NOT_XML, "", text)
    if text.startswith("=") or text in ERROR_CODES:
        return _cell(sheet, text, data_type="s", **style)
    return _cell(sheet, text, **style) if style else text


def _header(sheet: WriteOnlyWorksheet, titles: list[str]) -> list[WriteOnlyCell | str]:
    return [_text(sheet, title, font=BOLD, fill=HEADER_FILL) for title in titles]


def _display_width(text: str) -> int:
    """Columns Excel needs: CJK characters are about twice as wide as Latin ones."""
    return len(text) + len(re.findall(r"[\u2e80-\uffff]", text))


# -- Summary sheet ----


def _rate_cell(sheet: WriteOnlyWorksheet, rate: float | None) -> WriteOnlyCell | str:
    return "—" if rate is None or pd.isna(rate) else _cell(sheet, rate, number_format=PERCENT)


def _time_cell(sheet: WriteOnlyWorksheet, stamp: datetime | None) -> WriteOnlyCell | str:
    return "—" if stamp is None else _cell(sheet, stamp, number_format=TIME_FORMAT)


def _breakdown_rows(sheet: WriteOnlyWorksheet, title: str, first: str, table: pd.DataFrame):
    yield [_cell(sheet, title, font=BOLD)]
    yield _header(sheet, [first, *BREAKDOWN_HEADERS.values()])
    for name, row in table.iterrows():  # a few dozen rows at most
        counts = [
            int(row[c]) for c in ("messages", "delivered", "undelivered", "failed", "awaiting")
        ]
        rates = [_rate_cell(sheet, row["delivery_rate"]), _rate_cell(sheet, row["failure_rate"])]
        yield [_text(sheet, str(name)), *counts, *rates]
    yield []


def _summary_rows(sheet: WriteOnlyWorksheet, summary: Summary):
    yield [_text(sheet, f"短信活动报告 · Campaign report: {summary.campaign}", font=TITLE)]
    yield []
    facts = [
        ("campaign 活动", _text(sheet, summary.campaign)),
        ("message template 短信模板", _text(sheet, summary.template, alignment=WRAP)),
        ("created 创建", _time_cell(sheet, summary.created_at)),
        ("started 开始发送", _time_cell(sheet, summary.started_at)),
        ("finished 发送完成", _time_cell(sheet, summary.finished_at)),
        ("report generated 报表生成", _time_cell(sheet, summary.generated_at)),
        ("times are 时区", f"{TIMEZONE} (UTC+8, 北京时间)"),
        ("recipients 收件人", summary.total),
        ("delivery rate 送达率 (delivered ÷ receipts)", _rate_cell(sheet, summary.delivery_rate)),
        ("delivered ÷ sent 送达率(按已发送)", _rate_cell(sheet, summary.delivered_of_sent)),
        ("segments used 计费条数", summary.segments_used),
        ("this file 本文件", f"{summary.rows} rows: {summary.scope}"),
        *(("warning 注意", _text(sheet, warning, alignment=WRAP)) for warning in summary.warnings),
    ]
    for label, value in facts:
        yield [_cell(sheet, label, font=BOLD), value]
    yield []
    yield [_cell(sheet, "Messages by state · 各状态数量", font=BOLD)]
    yield _header(sheet, ["state", "状态 meaning", "messages 条数", "share 占比"])
    for state, count in summary.by_state.items():
        share = count / summary.total if summary.total else None
        yield [state, STATE_LABELS[state], count, _rate_cell(sheet, share)]
    yield [_cell(sheet, "total", font=BOLD), "合计", _cell(sheet, summary.total, font=BOLD)]
    yield []
    yield [_cell(sheet, "Not sent or refused, by code · 未发出原因", font=BOLD)]
    yield _header(sheet, ["code 代码", "meaning 含义", "messages 条数"])
    for code, meaning, count in summary.errors:
        yield [_text(sheet, code), _text(sheet, meaning, alignment=WRAP), count]
    yield []
    yield [_cell(sheet, "Undelivered, by operator receipt · 未送达回执", font=BOLD)]
    yield _header(sheet, ["receipt 回执", "", "messages 条数"])
    for receipt, count in summary.receipts:
        yield [_text(sheet, receipt), None, count]
    yield []
    yield from _breakdown_rows(sheet, "By carrier · 按运营商", "carrier 运营商", summary.by_carrier)
    yield from _breakdown_rows(sheet, "By province · 按省份", "province 省份", summary.by_province)


def _write_summary(sheet: WriteOnlyWorksheet, summary: Summary) -> None:
    for letter, width in zip("ABCDEFGH", (44, 50, 16, 18, 16, 18, 20, 18), strict=True):
        sheet.column_dimensions[letter].width = width
    for row in _summary_rows(sheet, summary):
        sheet.append(row)


# -- Recipients sheets ----
#
# openpyxl writes a few microseconds per cell: three minutes for a million rows.  So openpyxl
# builds the package (Summary, styles, and each Recipients sheet's columns, frozen header and
# filter), and the recipient rows are then streamed into it as the same XML openpyxl writes
# (inline strings, numbers, dates as serial numbers), built column-wise: 15 s for a million.

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
RELATION = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
EXCEL_EPOCH = pd.Timestamp("1899-12-30")  # day 0 of Excel's serial dates


def _xml_text(text: pd.Series) -> pd.Series:
    clean = text.str.replace(NOT_XML, "", regex=True)
    for raw, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        clean = clean.str.replace(raw, escaped, regex=False)
    return clean


def _cells_xml(column: pd.Series, letter: str, rows: pd.Series, time_style: int) -> pd.Series:
    """One column's ``<c>`` elements ("" for an empty cell).  Text is an inline string, never a
    formula, so "=HYPERLINK(…)" and 13800138000 both stay exactly as written."""
    ref = f'<c r="{letter}' + rows
    if pd.api.types.is_datetime64_any_dtype(column):
        serial = ((column - EXCEL_EPOCH) / pd.Timedelta(days=1)).astype("str")
        return (ref + f'" s="{time_style}"><v>' + serial + "</v></c>").where(column.notna(), "")
    if pd.api.types.is_numeric_dtype(column):
        return (ref + '"><v>' + column.astype("str") + "</v></c>").where(column.notna(), "")
    text = column.astype("str").fillna("")
    inline = (
        ref + '" t="inlineStr"><is><t xml:space="preserve">' + _xml_text(text) + "</t></is></c>"
    )
    return inline.where(text != "", "")


def _rows_xml(rows: pd.DataFrame, first: int, time_style: int) -> bytes:
    """``<row>`` elements for ``rows``, the first of them sheet row ``first``."""
    letters = [get_column_letter(index) for index in range(1, len(rows.columns) + 1)]
    numbers = pd.Series(np.arange(first, first + len(rows)), index=rows.index).astype("str")
    xml = '<row r="' + numbers + '">'
    for letter, name in zip(letters, rows.columns, strict=True):
        xml = xml + _cells_xml(rows[name], letter, numbers, time_style)
    return "".join((xml + "</row>").tolist()).encode()


def _by_sheet(
    chunks: Iterator[pd.DataFrame], per_sheet: int
) -> Iterator[tuple[int, int, pd.DataFrame]]:
    """(sheet, its first row, rows) for each piece of ``chunks`` cut at the sheets' row limit;
    sheet 0 is the first Recipients sheet, and row 2 the first below its header."""
    written = 0
    for chunk in chunks:
        start = 0
        while start < len(chunk):
            sheet, offset = divmod(written, per_sheet)
            piece = chunk.iloc[start : start + per_sheet - offset]
            yield sheet, offset + 2, piece
            start += len(piece)
            written += len(piece)


def _widths(sample: pd.DataFrame) -> list[float]:
    sample = sample.head(SAMPLE_ROWS)
    widths: list[float] = []
    for name in sample.columns:
        column = sample[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            longest = 19
        else:
            text = column.astype("str").fillna("")
            longest = max([_display_width(name), *map(_display_width, text.unique()[:500])])
        widths.append(min(max(longest, 6) + 2, 60))
    return widths


def _recipients_frame(
    sheet: WriteOnlyWorksheet, columns: list[str], rows: int, widths: list[float]
) -> None:
    """Everything but the rows: widths, the header, frozen and filterable over all rows."""
    last = get_column_letter(max(len(columns), 1))
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{last}{rows + 1}"
    for index, width in enumerate(widths, 1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.append(_header(sheet, columns))


def _sheet_paths(package: ZipFile) -> dict[str, str]:
    """Sheet name → its XML part in the package, as the workbook's relationships say."""
    book = ElementTree.fromstring(package.read("xl/workbook.xml"))
    links = ElementTree.fromstring(package.read("xl/_rels/workbook.xml.rels"))
    targets = {link.get("Id"): link.get("Target", "") for link in links}

    def part(target: str) -> str:  # absolute ("/xl/…") or relative to xl/
        return target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)

    return {
        sheet.get("name", ""): part(targets[sheet.get(RELATION)])
        for sheet in book.iter(f"{MAIN}sheet")
    }


def _style_index(package: ZipFile, number_format: str) -> int:
    """The cell style (its index in cellXfs) openpyxl registered for ``number_format``: the
    Summary's times ("report generated" at least) use TIME_FORMAT, so it is always there."""
    styles = ElementTree.fromstring(package.read("xl/styles.xml"))
    formats = {f.get("formatCode"): f.get("numFmtId") for f in styles.iter(f"{MAIN}numFmt")}
    xfs = styles.find(f"{MAIN}cellXfs")
    assert xfs is not None  # every styles part openpyxl writes has its cellXfs
    return next(i for i, xf in enumerate(xfs) if xf.get("numFmtId") == formats[number_format])


def _fill(
    skeleton: BytesIO,
    names: list[str],
    pieces: Iterator[tuple[int, int, pd.DataFrame]],
    output: Path,
) -> None:
    """Copy the package openpyxl built, streaming the rows into Recipients sheets ``names``."""
    with ZipFile(skeleton) as source, ZipFile(output, "w", ZIP_DEFLATED) as target:
        paths = {
            path: names.index(name) for name, path in _sheet_paths(source).items() if name in names
        }
        time_style = _style_index(source, TIME_FORMAT)
        piece = next(pieces, None)
        for item in source.infolist():  # the sheets in order, as openpyxl wrote them
            xml = source.read(item)
            if item.filename not in paths:
                target.writestr(item, xml)
                continue
            head, end, tail = xml.rpartition(b"</sheetData>")
            with target.open(item.filename, "w", force_zip64=True) as stream:
                stream.write(head)
                while piece is not None and piece[0] == paths[item.filename]:
                    stream.write(_rows_xml(piece[2], piece[1], time_style))
                    piece = next(pieces, None)
                stream.write(end + tail)


def write(rows: Rows, summary: Summary, output: Path, rows_per_sheet: int | None = None) -> None:
    """Summary (opened first), then Recipients; past Excel's row limit, Recipients 2, 3, …"""
    per_sheet = rows_per_sheet or ROWS_PER_SHEET
    book = Workbook(write_only=True)
    _write_summary(book.create_sheet("Summary"), summary)
    chunks = rows.chunks()
    first = next(chunks, pd.DataFrame(columns=rows.columns))
    widths = _widths(first)
    names = []
    for part, start in enumerate(range(0, max(rows.count, 1), per_sheet), 1):
        names.append("Recipients" if part == 1 else f"Recipients {part}")
        in_sheet = min(per_sheet, rows.count - start)
        _recipients_frame(book.create_sheet(names[-1]), rows.columns, in_sheet, widths)
    skeleton = BytesIO()
    book.save(skeleton)
    _fill(skeleton, names, _by_sheet(chain([first], chunks), per_sheet), output)
