"""Import as a whole: the summary, de-duplication across chunks and imports, dry runs, the rejects
file, warnings, the same file twice, and failures half-way that must leave the campaign alone."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from alembic import command
from openpyxl import load_workbook
from sqlalchemy import event, inspect, text
from sqlalchemy.exc import OperationalError

from campaigns import importing
from campaigns.errors import InputFileError, UserError
from campaigns.importing import ImportSummary, import_file
from campaigns.intake import delimited, limits
from campaigns.intake.seen import SeenNumbers
from campaigns.store import intake_queries
from campaigns.store.db import Store, alembic_config

CORPUS = Path(__file__).parent / "corpus"
MESSAGE = "【榛子测试】{姓名}您好,您的订单已发货"


@pytest.fixture
def store(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    yield store
    store.close()


@pytest.fixture
def any_store(any_db_url: str):
    """The same test on SQLite and on PostgreSQL (tests/conftest.py)."""
    store = Store(any_db_url)
    yield store
    store.close()


def write_csv(path: Path, rows: list[tuple[str, str]], header: str = "手机号,姓名") -> Path:
    path.write_text("\n".join([header, *(f"{p},{n}" for p, n in rows)]) + "\n", encoding="utf-8")
    return path


def numbered(count: int, start: int = 0) -> list[tuple[str, str]]:
    return [(f"138{start + i:08d}", f"客户{start + i}") for i in range(count)]


def messages(store: Store) -> pd.DataFrame:
    query = (
        "SELECT row_number, raw_phone, phone, message_id, state, reason, error_text, content,"
        " segments, fields, campaign_id FROM messages ORDER BY id"
    )
    with store.engine.connect() as connection:
        return pd.read_sql(text(query), connection)


def table(store: Store, name: str, columns: str = "*") -> list[tuple]:
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(f"SELECT {columns} FROM {name}"))]


def test_summary_and_stored_rows(any_store: Store, tmp_path: Path) -> None:
    rows = [
        ("13800138000", "张三"),
        ("+86 139-0013-9000", "李四"),
        ("010-12345678", "座机"),
        ("13800138000", "重复"),
        ("13700137000", ""),
        ("13600136000", "😀" * 40),  # 16 + 80 = 96 UTF-16 units: 2 segments
    ]
    summary = import_file(
        any_store, write_csv(tmp_path / "a.csv", rows), campaign="c", message=MESSAGE
    )
    assert (summary.rows, summary.accepted, summary.rejected_total) == (6, 3, 3)
    assert summary.rejected == {"landline": 1, "duplicate": 1, "empty_field:姓名": 1}
    assert (summary.segments, summary.cost, summary.largest, summary.largest_characters) == (
        4,
        4,
        2,
        96,
    )
    assert summary.sample[0] == "【榛子测试】张三您好,您的订单已发货"
    assert len(summary.sample) == 3
    assert summary.rejects.columns.tolist() == ["row", "手机号", "姓名", "reason"]
    assert summary.rejects["row"].tolist() == [4, 5, 6]
    assert "(first at row 2)" in summary.rejects["reason"][1]
    assert "(column 姓名)" in summary.rejects["reason"][2]
    assert not summary.dry_run and not summary.already_imported

    stored = messages(any_store)
    assert stored["state"].tolist() == [
        "pending",
        "pending",
        "invalid",
        "invalid",
        "invalid",
        "pending",
    ]
    token = stored["message_id"][0].split("-")[0]
    assert stored["message_id"].dropna().tolist() == [f"{token}-000000{i}" for i in (1, 2, 3)]
    assert stored["phone"].tolist()[:2] == ["13800138000", "13900139000"]
    assert stored["reason"].tolist()[2:5] == ["landline", "duplicate", "empty_field:姓名"]
    assert stored["segments"].tolist() == [1, 1, 0, 0, 0, 2]
    assert json.loads(stored["fields"][1]) == {"手机号": "+86 139-0013-9000", "姓名": "李四"}


def test_fields_json_survives_quotes_backslashes_and_controls(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text(
        'phone,"na""me",note\n13800138000,"a ""b"" \\c",\x01\u2028x/y\n', encoding="utf-8"
    )
    import_file(store, path, campaign="c", message="【店】{note}")
    assert json.loads(messages(store)["fields"][0]) == {
        "phone": "13800138000",
        'na"me': 'a "b" \\c',
        "note": "\x01\u2028x/y",
    }


def test_length_is_counted_in_utf16_units(store: Store, tmp_path: Path) -> None:
    rows = [("13800138000", "😀" * 500), ("13900139000", "😀" * 500 + "a")]
    summary = import_file(
        store, write_csv(tmp_path / "l.csv", rows), campaign="c", message="{姓名}"
    )
    assert summary.rejected == {"too_long": 1}
    assert (summary.largest_characters, summary.largest) == (1000, 15)


@pytest.mark.parametrize("merge_limit", [1 << 20, 50])  # runs of seen numbers merged or not
def test_duplicates_across_chunks_and_earlier_imports(
    any_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, merge_limit: int
) -> None:
    monkeypatch.setattr(SeenNumbers, "MERGE_LIMIT", merge_limit)
    monkeypatch.setattr(intake_queries, "ROWS_PER_STATEMENT", 7)
    monkeypatch.setattr(delimited, "BLOCK_BYTES", 512)
    monkeypatch.setattr(limits, "CHUNK_ROWS", 40)
    first = numbered(300) + [numbered(1)[0]] + [numbered(1, 150)[0]]
    summary = import_file(
        any_store, write_csv(tmp_path / "1.csv", first), campaign="c", message=MESSAGE
    )
    assert summary.accepted == 300 and summary.rejected == {"duplicate": 2}
    assert summary.rejects["reason"].str.extract(r"first at row (\d+)")[0].tolist() == ["2", "152"]

    second = numbered(10, 295)  # 5 already in the campaign, 5 new
    summary = import_file(
        any_store, write_csv(tmp_path / "2.csv", second), campaign="c", message=MESSAGE
    )
    assert (summary.accepted, summary.rejected) == (5, {"duplicate": 5})
    assert summary.rejects["reason"][0].endswith("(first at row 297 of an earlier import)")
    ids = messages(any_store)["message_id"].dropna().str.split("-").str[1].astype(int)
    assert ids.tolist() == list(range(1, 306))  # numbering carries on, no gaps, no repeats


def test_same_file_twice_adds_nothing(any_store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", numbered(5) + [("123", "x")])
    import_file(any_store, path, campaign="c", message=MESSAGE)
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(path.read_bytes())
    for again in (path, copy):
        summary = import_file(any_store, again, campaign="c", message=MESSAGE)
        assert summary.already_imported
        assert (summary.rows, summary.accepted) == (6, 5)
    assert len(messages(any_store)) == 6
    assert table(any_store, "imports", "sha256, rows, accepted") == [
        (__import__("hashlib").sha256(path.read_bytes()).hexdigest(), 6, 5)
    ]
    other = import_file(any_store, path, campaign="other", message=MESSAGE)  # another campaign
    assert other.accepted == 5


def test_dry_run_stores_nothing_and_shows_what_would_happen(
    any_store: Store, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "a.csv", numbered(8) + [("1", "x")])
    dry = import_file(any_store, path, campaign="c", message=MESSAGE, dry_run=True)
    assert dry.dry_run and (dry.accepted, dry.rejected_total) == (8, 1)
    assert len(dry.sample) == importing.SAMPLE_SIZE
    assert dry.rejects["reason"].tolist() == [importing.REASONS["wrong_length"]]
    assert table(any_store, "campaigns") == [] and table(any_store, "messages") == []

    real = import_file(any_store, path, campaign="c", message=MESSAGE)
    assert (real.accepted, real.segments, real.sample) == (dry.accepted, dry.segments, dry.sample)
    again = import_file(
        any_store,
        write_csv(tmp_path / "b.csv", numbered(3, 7)),
        campaign="c",
        message=MESSAGE,
        dry_run=True,
    )
    assert (again.accepted, again.rejected) == (2, {"duplicate": 1})  # sees the campaign's numbers
    assert len(messages(any_store)) == 9


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_rejects_file(store: Store, tmp_path: Path, suffix: str) -> None:
    rows = [
        ("13800138000", "好"),
        ('=HYPERLINK("x")', "a"),
        ("+44 20 7946 0958", "@b"),
        ("-1", "c"),
        ("13800138000", "d"),
    ]
    out = tmp_path / f"rejects{suffix}"
    summary = import_file(
        store, write_csv(tmp_path / "a.csv", rows), campaign="c", message=MESSAGE, rejects_path=out
    )
    if suffix == ".csv":
        assert out.read_bytes().startswith(b"\xef\xbb\xbf")
        written = pd.read_csv(out, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    else:
        sheet = load_workbook(out).active
        values = list(sheet.values)
        assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
        written = pd.DataFrame(values[1:], columns=values[0]).astype(str)
    assert written.columns.tolist() == ["row", "手机号", "姓名", "reason"]
    assert len(written) == summary.rejected_total == 4
    assert written["手机号"].tolist() == [
        '\'=HYPERLINK("x")',
        "'+44 20 7946 0958",
        "'-1",
        "13800138000",
    ]
    assert written["姓名"].tolist() == ["a", "'@b", "c", "d"]
    assert written["row"].tolist() == ["3", "4", "5", "6"]
    assert written["reason"][3].endswith("(first at row 2)")
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_rejects_path_is_checked_before_anything(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", numbered(2))
    with pytest.raises(UserError, match="must end in .csv or .xlsx"):
        import_file(store, path, campaign="c", message=MESSAGE, rejects_path=tmp_path / "r.txt")
    with pytest.raises(UserError, match="would overwrite the file being imported"):
        import_file(store, path, campaign="c", message=MESSAGE, rejects_path=path)
    assert table(store, "campaigns") == []


def test_a_failure_half_way_leaves_the_campaign_as_it_was(
    any_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_file(
        any_store, write_csv(tmp_path / "a.csv", numbered(10)), campaign="c", message=MESSAGE
    )
    before = (messages(any_store), table(any_store, "imports"), table(any_store, "campaigns"))
    monkeypatch.setattr(delimited, "BLOCK_BYTES", 512)
    monkeypatch.setattr(limits, "CHUNK_ROWS", 40)
    rows = numbered(200, 100)
    rows[180] = ("13800000280", "客户,多余")  # row 182, many chunks in
    bad = write_csv(tmp_path / "bad.csv", rows)
    rejects = tmp_path / "rejects.csv"
    with pytest.raises(InputFileError, match=r"^bad\.csv: row 182 has 3 cells"):
        import_file(any_store, bad, campaign="c", message=MESSAGE, rejects_path=rejects)
    assert not rejects.exists()

    good = write_csv(tmp_path / "good.csv", numbered(200, 100))
    calls = []

    def interrupted(session, statements):  # Ctrl-C after two chunks were written
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        write(session, statements)

    def disk_full(session, statements):
        raise OperationalError("INSERT", {}, Exception("database or disk is full"))

    write = intake_queries.MessageInsert.execute
    monkeypatch.setattr(intake_queries.MessageInsert, "execute", staticmethod(interrupted))
    with pytest.raises(KeyboardInterrupt):
        import_file(any_store, good, campaign="c", message=MESSAGE)
    assert len(calls) == 3

    monkeypatch.setattr(intake_queries.MessageInsert, "execute", staticmethod(disk_full))
    with pytest.raises(UserError, match=r"^good\.csv: nothing was imported.*disk is full\)$"):
        import_file(any_store, good, campaign="new", message=MESSAGE)

    after = (messages(any_store), table(any_store, "imports"), table(any_store, "campaigns"))
    pd.testing.assert_frame_equal(before[0], after[0])
    assert before[1:] == after[1:]


def test_warnings_are_kept_on_the_campaign(any_store: Store, tmp_path: Path) -> None:
    rows = [
        ("13800138000", "你好"),
        ("13900139000", "12132"),
        ("13700137000", "您好!"),
        ("13600136000", "双十一全场五折"),
    ]
    summary = import_file(
        any_store,
        write_csv(tmp_path / "a.csv", rows),
        campaign="c",
        message="{姓名}",
        marketing=True,
    )
    assert len(summary.warnings) == 4
    signature, opt_out, greeting, digits = summary.warnings
    assert "【" in signature and "签名" in signature
    assert "退订" in opt_out
    assert greeting.startswith("2 message(s) say nothing but a greeting") and "row 2" in greeting
    assert digits.startswith("1 message(s) are only digits") and "row 3" in digits
    assert json.loads(table(any_store, "campaigns", "warnings")[0][0]) == summary.warnings
    quiet = import_file(
        any_store, write_csv(tmp_path / "b.csv", numbered(2)), campaign="q", message=MESSAGE
    )
    assert quiet.warnings == []


def test_template_file_and_template_errors(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", numbered(2))
    template = tmp_path / "message.txt"
    template.write_text(MESSAGE + "\n", encoding="utf-8")
    summary = import_file(store, path, campaign="c", template_file=template)
    assert summary.sample[0] == "【榛子测试】客户0您好,您的订单已发货"
    with pytest.raises(
        UserError, match=r"^a\.csv: the template uses \{名字\}.*columns: 手机号, 姓名"
    ):
        import_file(store, path, campaign="d", message="{名字}")
    with pytest.raises(UserError, match="already exists with another message template"):
        import_file(store, write_csv(tmp_path / "b.csv", numbered(1, 9)), campaign="c", message="x")
    assert table(store, "campaigns", "name") == [("c",)]


def test_international_numbers(any_store: Store, tmp_path: Path) -> None:
    rows = [
        ("+44 7911 123456", "a"),
        ("0044 7911 123456", "b"),
        ("+44 20 7946 0958", "c"),
        ("+1 345 916 1234", "d"),
        ("13459161234", "e"),
    ]
    path = write_csv(tmp_path / "a.csv", rows)
    plain = import_file(any_store, path, campaign="c", message=MESSAGE, dry_run=True)
    assert plain.rejected == {"international": 4}
    summary = import_file(any_store, path, campaign="c", message=MESSAGE, allow_international=True)
    assert summary.rejected == {"duplicate": 1, "international_invalid": 1}
    assert messages(any_store)["phone"].dropna().tolist() == [
        "+447911123456",
        "+13459161234",
        "13459161234",
    ]


CORPUS_CASES = {
    # file: (options, accepted, reasons) or the error it must give
    "gbk-semicolon.csv": (
        {},
        4,
        {"landline": 1, "excel_scientific": 1, "duplicate": 1, "empty": 1},
    ),
    "excel-unicode.txt": ({}, 2, {"wrong_length": 1}),
    "bom-crlf-ragged.csv": (
        {"message": "【店】{Name}"},
        2,
        {"empty_field:Name": 1, "not_a_number": 1, "empty": 1},
    ),
    "numbers-as-floats.xlsx": ({"sheet": "名单", "message": "【店】{金额}"}, 3, {}),
    "picture.csv": "not a spreadsheet",
    # Made with xlwt 1.3.0 (not a dependency) as WPS and old Excel write it: sheet 说明, then
    # sheet 名单 with 手机号 (a number, then text "139 0013 9000"), 姓名, 订单号 ("0012" as text,
    # 7 as a number) and a blank row 4.
    "wps-list.xls": ({"sheet": "名单", "message": "【店】{姓名}{订单号}"}, 3, {}),
    "legacy.xls": "damaged",  # an OLE header and nothing else
    "locked.xlsx": "password-protected",
    "damaged-utf8.csv": "line 3 is not valid UTF-8",
}


@pytest.mark.parametrize("name", sorted(CORPUS_CASES))
def test_corpus_of_ugly_files(store: Store, name: str) -> None:
    expected = CORPUS_CASES[name]
    if isinstance(expected, str):
        with pytest.raises(InputFileError) as caught:
            import_file(store, CORPUS / name, campaign="c", message=MESSAGE)
        assert expected in str(caught.value) and name in str(caught.value)
        assert "\n" not in str(caught.value)
        return
    options, accepted, reasons = expected
    options = {"message": "【店】{姓名}", **options}
    summary = import_file(store, CORPUS / name, campaign="c", **options)
    assert (summary.accepted, summary.rejected) == (accepted, reasons)


def test_every_corpus_file_has_a_case() -> None:
    assert sorted(path.name for path in CORPUS.iterdir()) == sorted(CORPUS_CASES)


def test_summary_defaults_describe_nothing() -> None:
    empty = ImportSummary(campaign="c", source="f.csv")
    assert (empty.rejected_total, empty.cost, empty.rejects.empty) == (0, 0, True)


def test_migration_0002_goes_down_and_up(any_db_url: str) -> None:
    Store(any_db_url).close()
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", any_db_url)
    store = Store(any_db_url)

    def schema() -> tuple[set[str], set[str], set[str]]:
        found = inspect(store.engine)
        indexes = {index["name"] for index in found.get_indexes("messages")}
        columns = {column["name"] for column in found.get_columns("campaigns")}
        return set(found.get_table_names()), indexes, columns

    command.downgrade(config, "0001")
    tables, indexes, columns = schema()
    assert "imports" not in tables and "warnings" not in columns
    assert "ix_messages_campaign_phone" in indexes
    command.upgrade(config, "head")
    tables, indexes, columns = schema()
    assert "imports" in tables and "warnings" in columns
    assert "ix_messages_campaign_phone" not in indexes
    store.close()


@pytest.mark.parametrize("version", [(3, 31, 1), (3, 40, 1)])
def test_statements_fit_an_old_sqlite_parameter_limit(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: tuple[int, ...]
) -> None:
    monkeypatch.setattr(sqlite3.dbapi2, "sqlite_version_info", version)  # what SQLAlchemy reads
    limit = 999 if version < (3, 32) else 32_766

    def as_that_library(dbapi_connection, _record) -> None:
        dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)

    event.listen(store.engine, "connect", as_that_library)
    store.engine.dispose()  # new connections, with the limit
    summary = import_file(
        store, write_csv(tmp_path / "a.csv", numbered(1234)), campaign="c", message=MESSAGE
    )
    assert summary.accepted == len(messages(store)) == 1234


def test_summary_names_the_phone_column(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [("13800138000", "张三")], header="联系电话,姓名")
    assert import_file(store, path, campaign="c", message=MESSAGE).phone_column == "联系电话"


def test_two_phone_columns_give_the_option_to_choose(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("手机号,联系 电话,姓名\n13800138000,13900139000,张三\n", encoding="utf-8")
    with pytest.raises(InputFileError) as caught:
        import_file(store, path, campaign="c", message=MESSAGE)
    assert str(caught.value) == (
        "two.csv: several columns look like phone numbers (手机号, 联系 电话); choose one with"
        ' --phone-column "手机号" or --phone-column "联系 电话"'
    )
    chosen = import_file(store, path, campaign="c", message=MESSAGE, phone_column="联系 电话")
    assert (chosen.phone_column, chosen.accepted) == ("联系 电话", 1)
    assert messages(store)["phone"].tolist() == ["13900139000"]


def test_a_header_longer_than_8_kb_imports_with_a_template_on_its_last_column(
    store: Store, tmp_path: Path
) -> None:
    """The sniffing sample cut such a header at 456 of 2,001 columns, then pandas crashed."""
    names = [f"备注说明第{i}列" for i in range(2_000)]
    rows = [",".join([f"1380013{n:04d}", *(f"值{n}-{i}" for i in range(2_000))]) for n in range(3)]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join([",".join(["手机号", *names]), *rows]) + "\n", encoding="utf-8")
    summary = import_file(store, path, campaign="c", message="【店】{备注说明第1999列}")
    assert (summary.accepted, summary.sample[0]) == (3, "【店】值0-1999")
