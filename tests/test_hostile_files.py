"""Hostile and unusual recipients files (issue 13): bombs, lying archives, huge spans, giant
cells, pipes; and the formats calamine brings (.xls, .ods).

Big files are generated here (``bench/hostile.py`` makes the same ones and measures them); each
hostile read runs in a child process, which reports its own peak memory.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from bench import hostile
from campaigns.intake import archive, limits, oldexcel, spreadsheets
from campaigns.intake.read import read_recipients
from tests.support.intake import read_all, read_error, write

GiB_MB = 1024
CORPUS = Path(__file__).with_name("corpus")
CHILD = """
import json, resource, sys
from campaigns.errors import InputFileError
from campaigns.intake.read import read_recipients
try:
    rows = sum(len(chunk.frame) for chunk in read_recipients(sys.argv[1]).chunks)
    said = None
except InputFileError as exc:
    rows, said = 0, str(exc)
print(json.dumps({"said": said, "rows": rows,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def read_in_child(path: Path) -> dict:
    """Read ``path`` in a child process: its refusal (or None), rows read and peak RSS in MB."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=120,  # a guard against a hang, not a speed goal
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


REFUSALS = {
    "one-cell-bomb.xlsx": "unpacks to 229 times its size; the limit for compression ratio",
    "long-cell.xlsx": "the limit for cell length is 32,767 characters",
    "shared-strings-bomb.xlsx": "the limit for shared strings is 5,000,000 strings",
    "wide-header.xlsx": "a row reaches column 4,097; the limit for columns is 4,096 columns",
    "same-cell-row.xlsx": "a row holds more than 4,096 cells; the limit for columns is 4,096",
    "misnamed-part.xlsx": "a row reaches column 4,097; the limit for columns is 4,096 columns",
    "lying-sizes.xlsx": "the workbook is damaged (Bad CRC-32",
    "repeated-cells.ods": "the limit for cells of a .xls or .ods sheet is 8,000,000 cells",
    # calamine took 1.1 GB for this 6 KB .xls whose last cell is at IV65536
    "far-cell.xls": "a sheet spans 16,777,216 cells; the limit for cells of a .xls or .ods sheet",
    "wide.csv": "the header row has 4,098 columns; the limit for columns is 4,096 columns",
    "giant-cell.csv": "a row is longer than 262,144 bytes",
    "long-cell.csv": "row 3 has a cell of 40,000 characters; the limit for cell length is 32,767",
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_hostile_file_is_refused_in_one_line_with_bounded_memory(tmp_path: Path, name: str) -> None:
    result = read_in_child(hostile.HOSTILE[name](tmp_path / name))
    said = result["said"]
    assert said is not None and "\n" not in said
    assert said.startswith(f"{name}: ")
    assert REFUSALS[name] in said
    assert result["rss_mb"] < GiB_MB


def test_sparse_span_is_streamed_not_allocated(tmp_path: Path) -> None:
    """calamine would ask for 4 billion cells and abort the process; openpyxl streams it."""
    result = read_in_child(hostile.sparse_span(tmp_path / "sparse.xlsx"))
    assert result["said"] is None
    assert result["rows"] == 1  # row 1,048,576, with its value at FAN
    assert result["rss_mb"] < GiB_MB


def test_fifo_and_folder_are_refused_without_waiting(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.csv")
    assert "is not a regular file" in read_error(tmp_path / "pipe.csv")
    os.mkfifo(tmp_path / "pipe.xlsx")
    assert "is not a regular file" in read_error(tmp_path / "pipe.xlsx")
    (tmp_path / "folder.xlsx").mkdir()
    assert "is a folder" in read_error(tmp_path / "folder.xlsx")


def test_csv_header_of_any_length_up_to_the_column_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A header past the 8 KB sniffing sample was cut at 456 of 2,001 columns."""
    names = [f"第{i}列备注说明" for i in range(2_000)]
    header = ",".join(["手机号", *names])
    rows = ",".join(["13800138000", *(str(i) for i in range(2_000))])
    result = read_all(write(tmp_path, "wide.csv", f"{header}\n{rows}\n"))
    assert len(header.encode()) > 8192
    assert result.frame.columns.tolist() == ["手机号", *names]
    assert result.frame.iloc[0, -1] == "1999"
    monkeypatch.setattr(limits, "MAX_COLUMNS", 2_001)  # the limit's edge, without 4,096 columns
    assert len(read_all(tmp_path / "wide.csv").frame.columns) == 2_001
    assert "2,002 columns" in read_error(hostile.wide_csv(tmp_path / "over.csv", columns=2_001))


def test_wide_files_come_in_chunks_of_bounded_cells(tmp_path: Path) -> None:
    header = ",".join(["phone", *(f"c{i}" for i in range(999))])
    lines = [",".join(["13800138000", *("x" * 999)]) for _ in range(450)]
    chunks = list(read_recipients(write(tmp_path, "w.csv", "\n".join([header, *lines]))).chunks)
    sizes = [len(chunk.frame) for chunk in chunks]  # 200 rows asked, whole pyarrow batches
    assert sum(sizes) == 450 and len(sizes) > 1 and max(sizes) < 400


def test_declared_sizes_are_checked_before_unpacking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = hostile.xlsx(tmp_path / "big.xlsx", [b'<row r="1"><c r="A1"><v>1</v></c></row>'])
    monkeypatch.setattr(archive, "MAX_UNCOMPRESSED_BYTES", 1000)
    assert "declare" in read_error(path) and "unpacked size is 1,000 bytes" in read_error(path)
    monkeypatch.undo()
    dense = tmp_path / "dense.xlsx"
    with zipfile.ZipFile(dense, "w", zipfile.ZIP_DEFLATED) as packed:
        packed.writestr("xl/media/blank.bin", b"\x00" * (8 << 20))
    assert "the limit for compression ratio is 200 times" in read_error(dense)


def test_xls_from_wps_reads_as_text() -> None:
    result = read_all(CORPUS / "wps-list.xls", sheet="名单")
    assert result.frame.to_dict("list") == {
        "手机号": ["13800138000", "139 0013 9000", "15000150000"],
        "姓名": ["张三", "李四", "王五"],
        "订单号": ["0012", "DD202611270002", "7"],
    }
    assert result.row_numbers.tolist() == [2, 3, 5]
    assert "sheets: 说明, 名单" in read_error(CORPUS / "wps-list.xls", sheet="x")


def test_ods_reads_as_text(tmp_path: Path) -> None:
    number = (
        '<table:table-row><table:table-cell office:value-type="float" office:value="13800138000">'
        "<text:p>13800138000</text:p></table:table-cell>"
        '<table:table-cell office:value-type="string"><text:p>张三</text:p></table:table-cell>'
        '<table:table-cell table:number-columns-repeated="1022"/></table:table-row>'
        '<table:table-row table:number-rows-repeated="1048574">'
        '<table:table-cell table:number-columns-repeated="1024"/></table:table-row>'
    )
    path = hostile.ods(tmp_path / "list.ods", hostile.ods_row("手机号", "姓名") + number)
    result = read_all(path)
    assert result.frame.to_dict("list") == {"手机号": ["13800138000"], "姓名": ["张三"]}
    assert result.source == "list.ods"


def test_a_sheet_that_starts_right_of_column_a_keeps_its_columns(tmp_path: Path) -> None:
    book = Workbook()
    book.active["B1"], book.active["C1"] = "手机号", "姓名"
    book.active["B2"], book.active["C2"] = 13800138000, "张三"
    book.save(tmp_path / "b.xlsx")
    result = read_all(tmp_path / "b.xlsx")
    assert result.frame.columns.tolist() == ["column 1", "手机号", "姓名"]
    assert result.frame["手机号"].tolist() == ["13800138000"]


def test_large_workbooks_stream_through_openpyxl_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sample = Path(__file__).resolve().parents[1] / "sample_data" / "recipients.xlsx"
    by_calamine = read_all(sample)
    monkeypatch.setattr(spreadsheets, "MAX_LOADED_CELLS", 0)
    by_openpyxl = read_all(sample)
    assert by_openpyxl.frame.equals(by_calamine.frame)
    assert by_openpyxl.row_numbers.tolist() == by_calamine.row_numbers.tolist()
    monkeypatch.undo()
    monkeypatch.setattr(spreadsheets, "WHOLE_READ_BYTES", 0)
    monkeypatch.setattr(spreadsheets, "_calamine_sheet", None)  # not called for a big file
    assert read_all(sample).frame.equals(by_calamine.frame)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("phone," + "x" * 40_000, "the header row has a cell of 40,000 characters; the limit"),
        ("phone," + "x" * 200_000, "a cell of more than 131,072 characters; the limit for cell"),
        ("phone" + ",a" * 600_000, "header row is longer than 1,048,576 characters; the limit"),
    ],
)
def test_csv_header_past_a_limit(tmp_path: Path, header: str, expected: str) -> None:
    assert expected in read_error(write(tmp_path, "h.csv", f"{header}\n13800138000\n"))


def test_prefixed_elements_count_as_much(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_SHARED_STRINGS", 3)
    path = hostile.xlsx(tmp_path / "x.xlsx", [hostile._HEADER], [b"<x:si><x:t>a</x:t></x:si>"] * 4)
    assert "more than 3 shared strings" in read_error(path)
    monkeypatch.setattr(archive, "MAX_SHEET_ROWS", 2)
    rows = [b'<x:row r="%d"><x:c r="A%d"><x:v>1</x:v></x:c></x:row>' % (n, n) for n in (1, 5)]
    assert "a sheet reaches row 5; the limit for rows is 2 rows" in read_error(
        hostile.xlsx(tmp_path / "r.xlsx", rows)
    )


def test_an_archive_of_too_many_parts_is_refused_before_its_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "parts.xlsx"
    with zipfile.ZipFile(path, "w") as packed:
        for number in range(12):
            packed.writestr(f"part{number}.xml", "<x/>", zipfile.ZIP_DEFLATED)
        packed.comment = b"a comment after the directory"
    monkeypatch.setattr(archive, "MAX_PARTS", 11)
    monkeypatch.setattr(zipfile, "ZipFile", None)  # refused before zipfile would read it
    assert "the archive lists 12 parts; the limit for parts is 11 parts" in read_error(path)


def test_a_long_cell_in_a_short_row_is_refused(tmp_path: Path) -> None:
    """A row with fewer cells than the header is parsed apart from the others."""
    text = "phone,name,city\n13800138000,a,b\n13900139000," + "长" * 40_000 + "\n"
    assert "row 3 has a cell of 40,000 characters" in read_error(write(tmp_path, "s.csv", text))


def test_xml_entities_are_refused(tmp_path: Path) -> None:
    """Entities expand as a "billion laughs" bomb; no spreadsheet program declares any."""
    laughs = b'<!DOCTYPE x [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    path = hostile.xlsx(tmp_path / "laughs.xlsx", [hostile._HEADER], [laughs])
    assert "the workbook is damaged (it declares XML entities)" in read_error(path)


def compound_file(stream: bytes) -> bytes:
    """A minimal OLE compound file (512-byte sectors) holding ``stream`` as "Workbook" in its
    mini stream, as a writer does for a workbook stream under 4,096 bytes.

    Sector 0 is the FAT, 1 the directory, 2 the mini FAT, 3 on the mini stream.
    """
    end, free = 0xFFFFFFFE, 0xFFFFFFFF
    mini = stream + b"\x00" * (-len(stream) % 64)
    data_sectors = -(-len(mini) // 512)
    fat = [0xFFFFFFFD, end, end, *range(4, 3 + data_sectors), end]
    mini_fat = [*range(1, len(mini) // 64), end]
    counts = (0, 1, 1, 0, 4096, 2, 1, end, 0)  # directory sectors, FAT sectors, directory ...
    header = struct.pack(
        "<8s16s5H6s9I109I",
        bytes.fromhex("d0cf11e0a1b11ae1"),
        b"",
        *(0x3E, 3, 0xFFFE, 9, 6),  # version 3, little-endian, 512- and 64-byte sectors
        b"",
        *counts,
        *(0, *[free] * 108),  # the FAT is sector 0
    )

    def entry(name: str, kind: int, start: int, size: int) -> bytes:
        encoded = (name + "\x00").encode("utf-16-le")
        links = (free, free, free)
        return struct.pack(
            "<64sHBB3I16sI16sII4x", encoded, len(encoded), kind, 1, *links, b"", 0, b"", start, size
        )

    directory = entry("Root Entry", 5, 3, len(mini)) + entry("Workbook", 2, 0, len(stream))
    sectors = [
        struct.pack("<128I", *fat, *[free] * (128 - len(fat))),
        directory + b"\x00" * (512 - len(directory)),
        struct.pack("<128I", *mini_fat, *[free] * (128 - len(mini_fat))),
        mini + b"\x00" * (data_sectors * 512 - len(mini)),
    ]
    return header + b"".join(sectors)


def biff(*cells: tuple[int, int]) -> bytes:
    """A workbook stream of one sheet whose NUMBER records sit at the (row, column) given."""
    records = [struct.pack("<HH", 0x0809, 16) + b"\x00" * 16]
    records += [struct.pack("<HHHHHd", 0x0203, 14, row, column, 0, 1.0) for row, column in cells]
    return b"".join([*records, struct.pack("<HH", 0x000A, 0)])


def test_a_small_xls_in_the_mini_stream_is_measured_too(tmp_path: Path) -> None:
    assert oldexcel.largest_span(compound_file(biff((0, 0), (2, 2)))) == 9
    far = tmp_path / "far.xls"
    far.write_bytes(compound_file(biff((0, 0), (65_535, 255))))
    assert "a sheet spans 16,777,216 cells" in read_error(far)


@pytest.mark.parametrize(
    "far",
    [
        b'<row r="1048576"><c r="FAN1048576"><v>1</v></c></row>',
        b'<row r="1048576"><c r="fan1048576"><v>1</v></c></row>',  # calamine reads lower case
        b"<row r='1048576'><c r = 'FAN1048576'><v>1</v></c></row>",  # and other quotes
        b'<row r="2"><c r="FAN1048576"><v>1</v></c></row>',  # the cell's own row counts
    ],
)
def test_every_spelling_of_a_reference_counts_in_the_span(tmp_path: Path, far: bytes) -> None:
    path = hostile.xlsx(tmp_path / "far.xlsx", [hostile._HEADER, far])
    assert archive.scan_workbook(path, "far.xlsx").largest == 1_048_576 * 4_096


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (b"A" * 5000 + b"1", "a row reaches column"),
        (b"A" + b"9" * 5000, "a sheet reaches row"),  # Python's int() reads at most 4,300 digits
    ],
)
def test_absurd_references_are_refused(tmp_path: Path, reference: bytes, expected: str) -> None:
    row = b'<row r="1"><c r="' + reference + b'"><v>1</v></c></row>'
    assert expected in read_error(hostile.xlsx(tmp_path / "absurd.xlsx", [row]))


def test_references_and_counts_a_parser_might_read_otherwise_are_refused(tmp_path: Path) -> None:
    entity = hostile.xlsx(tmp_path / "e.xlsx", [b'<row><c r="&#88;FD1"><v>1</v></c></row>'])
    assert "damaged (a cell reference ending '&#88;FD1')" in read_error(entity)
    quoted = hostile.ods_row("x*4096", repeat=10_000).replace('"10000"', "'10000'")
    assert "a sheet spans 40,960,000 cells" in read_error(hostile.ods(tmp_path / "q.ods", quoted))
    signed = hostile.ods_row("x*+4096")
    assert "damaged (a repeat count '+4096')" in read_error(hostile.ods(tmp_path / "s.ods", signed))


def test_a_declared_count_of_shared_strings_is_held_to_the_limit(tmp_path: Path) -> None:
    """calamine sets memory aside for uniqueCount strings: 4,000,000,000 aborted the process."""
    path = hostile.xlsx(tmp_path / "sst.xlsx", [b'<row r="1"><c r="A1" t="s"><v>0</v></c></row>'])
    with zipfile.ZipFile(path) as packed:
        parts = {name: packed.read(name) for name in packed.namelist()}
    declared = b'<sst count="6000000" uniqueCount="4000000000" '  # count: references
    parts["xl/sharedStrings.xml"] = parts["xl/sharedStrings.xml"].replace(b"<sst ", declared)
    with zipfile.ZipFile(path, "w") as packed:
        for name, content in parts.items():
            packed.writestr(name, content)
    assert "it declares 4,000,000,000 shared strings; the limit" in read_error(path)
