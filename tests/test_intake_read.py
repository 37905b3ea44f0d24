"""Reading recipients files: encodings, delimiters, XLSX, and one-line errors for bad files."""

from __future__ import annotations

import codecs
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook

from campaigns.errors import InputFileError, UserError
from campaigns.intake import delimited, limits
from campaigns.intake.phones import normalise_phones
from campaigns.intake.read import read_recipients
from tests.support.intake import read_all, read_error, write

TEXT = "手机号,姓名,订单号\n13800138000,张三,DD202611270001\n13900139000,李四,0012\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


def xlsx(tmp_path: Path, sheets: dict[str, list[list[object]]], name: str = "r.xlsx") -> Path:
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(tmp_path / name)
    return tmp_path / name


def assert_sample(path: Path, **options: str) -> None:
    result = read_all(path, **options)
    assert result.phone_column == "手机号"
    assert result.frame.columns.tolist() == ["手机号", "姓名", "订单号"]
    assert result.frame.to_dict("list") == {
        "手机号": ["13800138000", "13900139000"],
        "姓名": ["张三", "李四"],
        "订单号": ["DD202611270001", "0012"],
    }
    assert result.row_numbers.tolist() == [2, 3]
    assert result.source == path.name


@pytest.mark.parametrize(
    ("name", "text", "encoding"),
    [
        ("utf8.csv", TEXT, "utf-8"),
        ("bom.csv", TEXT, "utf-8-sig"),
        ("gbk.csv", TEXT, "gbk"),
        ("gb18030.csv", TEXT, "gb18030"),
        ("semicolon.csv", TEXT.replace(",", ";"), "utf-8"),
        ("tab.txt", TEXT.replace(",", "\t"), "utf-8"),
        ("tab.tsv", TEXT.replace(",", "\t"), "utf-8"),
        ("excel-unicode.txt", TEXT.replace(",", "\t"), "utf-16"),
        ("crlf.csv", TEXT.replace("\n", "\r\n"), "utf-8"),
    ],
)
def test_text_files(tmp_path: Path, name: str, text: str, encoding: str) -> None:
    assert_sample(write(tmp_path, name, text, encoding))


def test_forced_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "gbk.csv", TEXT, "gbk")
    assert_sample(path, encoding="gbk")
    assert "utf-8" in read_error(path, encoding="utf-8")
    assert "unknown encoding" in read_error(path, encoding="klingon")


def test_cells_stay_text(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "手机号,代码,备注\n13800138000,007,NA\n1.38001E+10,1e3,null\n")
    frame = read_all(path).frame
    assert frame.to_dict("list") == {
        "手机号": ["13800138000", "1.38001E+10"],
        "代码": ["007", "1e3"],
        "备注": ["NA", "null"],
    }


def test_blank_rows_dropped_but_row_numbers_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "b.csv", "phone,name\n13800138000,a\n\n,\n13900139000,\n")
    result = read_all(path)
    assert result.frame["phone"].tolist() == ["13800138000", "13900139000"]
    assert result.frame["name"].tolist() == ["a", ""]
    assert result.row_numbers.tolist() == [2, 5]


def test_quoted_cell_with_a_line_break_is_one_row(tmp_path: Path) -> None:
    path = write(tmp_path, "q.csv", 'phone,address\n13800138000,"a\nb"\n13900139000,c\n')
    result = read_all(path)
    assert result.frame["address"].tolist() == ["a\nb", "c"]
    assert result.row_numbers.tolist() == [2, 3]


def test_short_rows_are_padded_and_empty_extra_cells_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "phone,name,city\n13800138000\n13900139000,b,c,,\n")
    result = read_all(path)
    assert result.frame.to_dict("list") == {
        "phone": ["13800138000", "13900139000"],
        "name": ["", "b"],
        "city": ["", "c"],
    }


def test_extra_cells_name_the_row(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "phone,name\n13800138000,a\n13900139000,b,surplus\n")
    assert "row 3 has 3 cells" in read_error(path)


def test_repeated_and_blank_headers_get_names(tmp_path: Path) -> None:
    path = write(tmp_path, "h.csv", "phone,name,name,\n13800138000,a,b,c\n")
    assert read_all(path).frame.columns.tolist() == ["phone", "name", "name.1", "column 4"]


def test_xlsx_numeric_phone_cell(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path,
        {
            "Sheet": [
                ["手机号", "姓名"],
                [13800138000, "张三"],
                [13900139000.0, 5],
                ["13700137000", None],
            ]
        },
    )
    result = read_all(path)
    phones = result.frame["手机号"]
    assert phones[2] == "13700137000"
    assert set(phones[:2]) <= {"13800138000", "13800138000.0", "13900139000", "13900139000.0"}
    assert normalise_phones(phones)[0].tolist() == ["13800138000", "13900139000", "13700137000"]
    assert result.frame["姓名"].tolist() == ["张三", "5", ""]
    assert result.row_numbers.tolist() == [2, 3, 4]


def test_xlsx_blank_row_keeps_row_numbers(tmp_path: Path) -> None:
    path = xlsx(tmp_path, {"S": [["phone"], ["13800138000"], [None], ["13900139000"]]})
    assert read_all(path).row_numbers.tolist() == [2, 4]


def test_xlsx_sheet_choice(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path, {"说明": [["说明"], ["这是说明"]], "名单": [["手机", "x"], ["13800138000", "y"]]}
    )
    assert read_all(path, sheet="名单").phone_column == "手机"
    message = read_error(path, sheet="Sheet1")
    assert "说明" in message and "名单" in message
    assert "(sheet 说明): no phone column" in read_error(path)  # the first sheet is the default


def test_phone_column_detection(tmp_path: Path) -> None:
    none = write(tmp_path, "none.csv", "姓名,城市\n张三,北京\n")
    assert "姓名, 城市" in read_error(none)
    two = write(tmp_path, "two.csv", "手机,电话\n13800138000,010-1234567\n")
    assert "手机, 电话" in read_error(two)
    assert read_all(two, phone_column="电话").phone_column == "电话"
    spaced = write(tmp_path, "spaced.csv", " Phone Number ,x\n13800138000,y\n")
    assert read_all(spaced).phone_column == "Phone Number"  # holds the word "phone"
    assert read_all(spaced, phone_column="phone number").phone_column == "Phone Number"
    assert "联系方式" in read_error(two, phone_column="联系方式")
    assert read_all(write(tmp_path, "t.csv", "TEL ,x\n1,2\n")).phone_column == "TEL"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("picture.csv", PNG, "not a spreadsheet"),
        ("empty.csv", b"", "empty"),
        ("blank.csv", b" \r\n\r\n", "empty"),
        ("bom-only.csv", codecs.BOM_UTF8, "empty"),
        ("header-only.csv", "手机号,姓名\n", "no data rows"),
        ("header-only.xlsx", None, "no data rows"),
        ("cut.xls", b"\xd0\xcf\x11\xe0", "not a workbook"),
        ("report.pdf", b"%PDF-1.4", "unsupported file type"),
        ("no-header.csv", "\n13800138000,a\n", "row 1 is empty"),
        ("workbook.csv", None, "rename it to .xlsx"),
        ("text.xlsx", TEXT, "not a workbook"),
        ("zeros.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "damaged"),
        (
            "locked.xlsx",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "EncryptionInfo".encode("utf-16-le"),
            "encrypted",
        ),
        ("other.xlsx", None, "damaged"),
        ("damaged-utf8.csv", "手机号\n13800138000\n".encode() + b"\xff\n", "line 3"),
    ],
)
def test_bad_files_give_one_line(tmp_path: Path, name: str, content: object, expected: str) -> None:
    path = tmp_path / name
    if name in ("header-only.xlsx", "workbook.csv"):
        xlsx(tmp_path, {"S": [["phone"]]}, name)
    elif name == "other.xlsx":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "not a workbook")
    else:
        write(tmp_path, name, content)
    assert expected in read_error(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    assert "not found" in read_error(tmp_path / "missing.csv")
    (tmp_path / "folder.csv").mkdir()
    assert "folder" in read_error(tmp_path / "folder.csv")


def test_options_that_do_not_apply(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="sheet"):
        read_all(write(tmp_path, "a.csv", TEXT), sheet="x")
    with pytest.raises(UserError, match="encoding"):
        read_all(xlsx(tmp_path, {"S": [["phone"], ["1"]]}), encoding="gbk")


def test_sample_files_agree() -> None:
    folder = Path(__file__).resolve().parents[1] / "sample_data"
    csv_rows = read_all(folder / "recipients.csv")
    xlsx_rows = read_all(folder / "recipients.xlsx")
    pd.testing.assert_frame_equal(csv_rows.frame, xlsx_rows.frame)
    assert csv_rows.row_numbers.tolist() == xlsx_rows.row_numbers.tolist() == list(range(2, 302))
    phone, reason = normalise_phones(csv_rows.frame[csv_rows.phone_column])
    assert set(reason) == {
        "",
        "empty",
        "excel_scientific",
        "not_a_number",
        "wrong_length",
        "landline",
        "international",
        "not_mobile",
    }
    assert phone[reason == ""].duplicated().sum() == 9


def odd_lines(rows: int) -> tuple[list[str], list[int]]:
    """Data lines whose phone encodes their row, with every oddity a chunk boundary can split:
    blank lines, short rows, quoted line breaks, empty extra cells; and the rows to expect."""
    lines, expected = [], []
    for row in range(2, rows + 2):
        phone = f"1380000{row:04d}"
        if row % 7 == 0:
            lines.append("")
            continue
        if row % 11 == 0:
            lines.append(phone)
        elif row % 13 == 0:
            lines.append(f'{phone},"多\n行",城')
        elif row % 17 == 0:
            lines.append(f"{phone},名,城,,")
        else:
            lines.append(f"{phone},名{row},城")
        expected.append(row)
    return lines, expected


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
@pytest.mark.parametrize("last", ["13800009999,名,城", "13800009999"])
def test_chunks_keep_every_row_and_its_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str, last: str
) -> None:
    monkeypatch.setattr(delimited, "BLOCK_BYTES", 256)
    monkeypatch.setattr(limits, "CHUNK_ROWS", 20)
    lines, expected = odd_lines(400)
    text = "\n".join(["手机号,姓名,城市", *lines, last]) + "\n"
    chunks = list(read_recipients(write(tmp_path, "big.csv", text, encoding)).chunks)
    assert len(chunks) > 10
    rows = np.concatenate([chunk.row_numbers for chunk in chunks]).tolist()
    phones = pd.concat([chunk.frame["手机号"] for chunk in chunks]).tolist()
    assert rows == [*expected, 402]
    assert phones[:-1] == [f"1380000{row:04d}" for row in expected]
    whole = read_all(write(tmp_path, "small.csv", text, encoding))  # one chunk: same rows
    assert whole.row_numbers.tolist() == rows
    assert whole.frame["姓名"].str.contains("\n").sum() == len(
        [row for row in expected if row % 13 == 0 and row % 11]
    )


def test_every_row_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delimited, "BLOCK_BYTES", 128)
    monkeypatch.setattr(limits, "CHUNK_ROWS", 10)
    text = "phone,name,city\n" + "".join(f"1380000{row:04d}\n" for row in range(2, 200))
    chunks = list(read_recipients(write(tmp_path, "s.csv", text)).chunks)
    assert max(len(chunk.frame) for chunk in chunks) < 100  # placed as read, not all at the end
    assert np.concatenate([c.row_numbers for c in chunks]).tolist() == list(range(2, 200))


def test_bad_row_in_a_later_chunk_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delimited, "BLOCK_BYTES", 256)
    monkeypatch.setattr(limits, "CHUNK_ROWS", 20)
    rows = [f"1380000{row:04d},名" for row in range(2, 300)]
    rows[250] = "13800000252,名,多余"
    path = write(tmp_path, "late.csv", "手机号,姓名\n" + "\n".join(rows) + "\n")
    recipients = read_recipients(path)
    first = next(recipients.chunks)  # the early rows are fine
    assert first.row_numbers[0] == 2
    with pytest.raises(InputFileError, match=r"^late\.csv: row 252 has 3 cells"):
        list(recipients.chunks)


def test_xlsx_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "CHUNK_ROWS", 3)
    rows = [["手机号", "姓名"]] + [[13800000000 + i, f"名{i}"] for i in range(10)]
    rows[5] = [None, None]
    path = xlsx(tmp_path, {"S": rows})
    chunks = list(read_recipients(path).chunks)
    assert [len(chunk.frame) for chunk in chunks] == [3, 3, 3]
    assert np.concatenate([c.row_numbers for c in chunks]).tolist() == [2, 3, 4, 5, 7, 8, 9, 10, 11]


def test_xlsx_value_beyond_the_header(tmp_path: Path) -> None:
    path = xlsx(tmp_path, {"S": [["手机号", None], ["13800138000", None], ["13900139000", "x"]]})
    assert read_all(path).frame.columns.tolist() == ["手机号", "column 2"]
    book = Workbook()
    book.active.append(["手机号"])
    book.active.append(["13800138000"])
    book.active["C3"] = "stray"
    book.save(tmp_path / "stray.xlsx")
    assert read_all(tmp_path / "stray.xlsx").frame.columns.tolist() == [
        "手机号",
        "column 2",
        "column 3",
    ]
