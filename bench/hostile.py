"""Hostile recipients files (issue 13): how long ``campaigns import`` takes to refuse each, and
its peak memory, in a child process of its own (``wait4`` rusage).

The files are generated here, in a second or two each, and ``tests/test_hostile_files.py``
makes the same ones: decompression bombs that are a few MB packed and hundreds of MB unpacked,
a zip whose directory lies about sizes, spans that would make calamine allocate billions of
cells, and CSV files past the column and cell-length limits.  Goal: every one is refused (or,
for the sparse span, read) under 1 GiB of memory, since each file is under 100 MB.

Run ``python -m bench.hostile``.
"""

from __future__ import annotations

import base64
import os
import struct
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

MiB = 1 << 20
WPS_XLS = Path(__file__).resolve().parent.parent / "tests" / "corpus" / "wps-list.xls"
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_SPREADSHEETML = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types'
    ' xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels"'
    ' ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_SPREADSHEETML}.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml"'
    f' ContentType="{_SPREADSHEETML}.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml"'
    f' ContentType="{_SPREADSHEETML}.sharedStrings+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PACKAGE_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{_MAIN}" xmlns:r="{_REL}">'
    '<sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PACKAGE_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="{{sheet}}"/>'
    f'<Relationship Id="rId2" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)
_ODS_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
    ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
    ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
)
_ODS_MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest'
    ' xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
    '<manifest:file-entry manifest:full-path="/"'
    ' manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
    '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
    "</manifest:manifest>"
)

Parts = Iterable[bytes]


def repeated(piece: bytes, count: int) -> Parts:
    """``piece`` ``count`` times, as blocks of about a MiB (never the whole in memory)."""
    per_block = max(1, MiB // len(piece))
    block = piece * per_block
    for _ in range(count // per_block):
        yield block
    yield piece * (count % per_block)


def xlsx(
    path: Path, rows: Parts, shared: Parts = (b"",), sheet: str = "worksheets/sheet1.xml"
) -> Path:
    """A minimal workbook: one sheet "S" whose sheetData holds ``rows``, and shared strings;
    the sheet's part is xl/``sheet``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS.format(sheet=sheet))
        head = f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_MAIN}"><sheetData>'
        _stream(archive, f"xl/{sheet}", [head.encode(), *rows], b"</sheetData></worksheet>")
        head = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{_MAIN}">'
        _stream(archive, "xl/sharedStrings.xml", [head.encode(), *shared], b"</sst>")
    return path


def ods(path: Path, rows: str) -> Path:
    """A minimal OpenDocument spreadsheet: one sheet 名单 holding ``rows`` (table-row XML)."""
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODS_NS}'
        ' office:version="1.2"><office:body><office:spreadsheet>'
        f'<table:table table:name="名单">{rows}</table:table>'
        "</office:spreadsheet></office:body></office:document-content>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("META-INF/manifest.xml", _ODS_MANIFEST, zipfile.ZIP_DEFLATED)
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
    return path


def ods_row(*cells: str, repeat: int = 1) -> str:
    """An ODS row of text cells; a cell "x*N" is the text x repeated over N columns."""
    parts = []
    for cell in cells:
        text, _, times = cell.partition("*")
        span = f' table:number-columns-repeated="{times}"' if times else ""
        parts.append(
            f'<table:table-cell office:value-type="string"{span}><text:p>{text}</text:p>'
            "</table:table-cell>"
        )
    rows = f' table:number-rows-repeated="{repeat}"' if repeat > 1 else ""
    return f"<table:table-row{rows}>{''.join(parts)}</table:table-row>"


def _stream(archive: zipfile.ZipFile, name: str, parts: Parts, end: bytes) -> None:
    with archive.open(name, "w", force_zip64=True) as part:
        for piece in parts:
            part.write(piece)
        part.write(end)


_HEADER = b'<row r="1"><c r="A1" t="inlineStr"><is><t>phone</t></is></c></row>'


def one_cell_bomb(path: Path) -> Path:
    """About 800 MB of one cell's text, 3.6 MB packed."""
    cell = [b'<row r="2"><c r="A2" t="inlineStr"><is><t>', *repeated(b"A", 800 * MiB)]
    return xlsx(path, [_HEADER, *cell, b"</t></is></c></row>"])


def long_cell_xlsx(path: Path) -> Path:
    """A cell of 2 MB of random letters: it packs badly, so no ratio gives it away."""
    text = base64.b32encode(os.urandom(5 * MiB // 4))
    cell = [b'<row r="2"><c r="A2" t="inlineStr"><is><t>', text, b"</t></is></c></row>"]
    return xlsx(path, [_HEADER, *cell])


def shared_strings_bomb(path: Path) -> Path:
    """20 million shared strings."""
    return xlsx(path, [_HEADER], repeated(b"<si><t>x</t></si>", 20_000_000))


def wide_header(path: Path) -> Path:
    """A header row of 20 million cells, without references."""
    return xlsx(path, [b"<row>", *repeated(b"<c><v>1</v></c>", 20_000_000), b"</row>"])


def same_cell_row(path: Path) -> Path:
    """A row of 20 million cells that all claim to be A1: the span is one cell, the cells not."""
    return xlsx(path, [b'<row r="1">', *repeated(b'<c r="A1"><v>1</v></c>', 20_000_000), b"</row>"])


def misnamed_part(path: Path) -> Path:
    """The 20-million-cell header row in a sheet part named sheet1.dat, not .xml."""
    rows = [b"<row>", *repeated(b"<c><v>1</v></c>", 20_000_000), b"</row>"]
    return xlsx(path, rows, sheet="worksheets/sheet1.dat")


def sparse_span(path: Path) -> Path:
    """Two cells, at A1 and FAN1048576 (the last column allowed): a span of 4 billion cells
    that calamine would allocate."""
    return xlsx(path, [_HEADER, b'<row r="1048576"><c r="FAN1048576"><v>1</v></c></row>'])


def lying_sizes(path: Path) -> Path:
    """A 300 MB sheet whose central directory says it unpacks to 1,000 bytes."""
    rows = [
        _HEADER,
        *repeated(b'<row><c t="inlineStr"><is><t>13800138000</t></is></c></row>', 5_000_000),
    ]
    xlsx(path, rows)
    return patch_declared_size(path, "xl/worksheets/sheet1.xml", 1000)


def patch_declared_size(path: Path, member: str, size: int) -> Path:
    """Rewrite the uncompressed size the central directory (and zip64 extra) declares."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    entry = data.find(b"PK\x01\x02")
    while entry != -1:
        name_length, extra_length = struct.unpack_from("<HH", data, entry + 28)
        if bytes(data[entry + 46 : entry + 46 + name_length]) == name:
            if struct.unpack_from("<I", data, entry + 24)[0] == 0xFFFFFFFF:
                struct.pack_into("<Q", data, entry + 46 + name_length + 4, size)  # zip64 extra
            else:
                struct.pack_into("<I", data, entry + 24, size)
            path.write_bytes(bytes(data))
            return path
        entry = data.find(b"PK\x01\x02", entry + 46 + name_length + extra_length)
    raise ValueError(f"{member} not in {path}")


def repeated_cells_ods(path: Path) -> Path:
    """One text cell repeated over 4,096 columns and a million rows: 4 billion cells."""
    return ods(path, ods_row("phone") + ods_row("x*4096", repeat=1_000_000))


def far_cell_xls(path: Path) -> Path:
    """The test corpus's .xls with its cell at A5 moved to IV65536: 16.7 million cells."""
    data = bytearray(WPS_XLS.read_bytes())
    number = data.find(struct.pack("<HHHH", 0x0203, 14, 4, 0))  # NUMBER record of A5
    struct.pack_into("<HH", data, number + 4, 65_535, 255)
    path.write_bytes(bytes(data))
    return path


def many_parts(path: Path) -> Path:
    """70,000 empty parts: a directory zipfile would turn into 70,000 objects."""
    with zipfile.ZipFile(path, "w") as archive:
        for number in range(70_000):
            archive.writestr(f"p{number}", b"")
    return path


def wide_csv(path: Path, columns: int = 4_097) -> Path:
    header = ",".join(f"column{i}" for i in range(columns))
    path.write_text(f"phone,{header}\n13800138000\n", encoding="utf-8")
    return path


def giant_cell_csv(path: Path, size: int = 50 * MiB) -> Path:
    with path.open("wb") as handle:
        handle.write(b"phone,name\n13800138000,")
        for block in repeated(b"x", size):
            handle.write(block)
        handle.write(b"\n")
    return path


def long_cell_csv(path: Path) -> Path:
    path.write_text("phone,name\n13800138000,ok\n13900139000," + "长" * 40_000 + "\n")
    return path


HOSTILE: dict[str, Callable[[Path], Path]] = {
    "one-cell-bomb.xlsx": one_cell_bomb,
    "long-cell.xlsx": long_cell_xlsx,
    "shared-strings-bomb.xlsx": shared_strings_bomb,
    "wide-header.xlsx": wide_header,
    "same-cell-row.xlsx": same_cell_row,
    "misnamed-part.xlsx": misnamed_part,
    "lying-sizes.xlsx": lying_sizes,
    "sparse-span.xlsx": sparse_span,
    "repeated-cells.ods": repeated_cells_ods,
    "far-cell.xls": far_cell_xls,
    "many-parts.xlsx": many_parts,
    "wide.csv": wide_csv,
    "giant-cell.csv": giant_cell_csv,
    "long-cell.csv": long_cell_csv,
}


def main() -> None:
    import tempfile

    from bench._common import (
        campaigns_cmd,
        cli_env,
        goal,
        parser,
        print_goals,
        print_table,
        run_child,
        write_results,
    )

    args = parser("hostile", __doc__.splitlines()[0]).parse_args()
    rows, goals = {}, []
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as folder:
        for name, make in HOSTILE.items():
            path = make(Path(folder) / name)
            size = path.stat().st_size
            cmd = campaigns_cmd("import", str(path), "-c", name, "-m", "【店】{phone}", "--dry-run")
            child = run_child(cmd, cli_env(Path(folder) / "c.db"), timeout=600)
            said = (child.stdout + child.stderr).strip().splitlines()
            rows[name] = {
                "file_mb": round(size / MiB, 2),
                "seconds": round(child.wall, 2),
                "peak_rss_mb": round(child.maxrss_mb),
                "exit": child.returncode,
                "said": said[-1] if said else "",
            }
            goals.append(goal(f"{name} peak RSS MB", child.maxrss_mb, "<=", 1024))
            path.unlink()
    print_table(
        "hostile files: campaigns import --dry-run",
        ["file", "MB", "s", "peak RSS MB", "exit", "message"],
        [
            [n, r["file_mb"], r["seconds"], r["peak_rss_mb"], r["exit"], r["said"][:110]]
            for n, r in rows.items()
        ],
    )
    print_goals(goals)
    write_results(
        "hostile", args, {"params": {}, "rows": rows, "goals": goals, "runs": [], "notes": ""}
    )


if __name__ == "__main__":
    main()
