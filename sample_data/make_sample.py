"""Write the demo recipients file twice: recipients.csv (UTF-8 with BOM) and recipients.xlsx.

The rows carry the mess real spreadsheets have (landlines, short numbers, letters, an Excel
scientific-notation number, +86 / 0086 prefixes, full-width digits, repeats), so the demo shows
every rejection reason.  The seed is fixed: running it again gives the same rows.

Run: python sample_data/make_sample.py
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import phonenumbers
from openpyxl import Workbook

HERE = Path(__file__).resolve().parent
HEADER = ["手机号", "姓名", "订单号", "城市"]
ROWS = 300
SEED = 20261127

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾田董潘袁蔡蒋余于"
    "杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史黎"
    "贺顾毛郝龚邵万钱武戴孔汤"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍鹏辉玲丹建华梅琳宇浩"
    "欣怡子涵雨轩梓萱一诺佳琪思远俊杰晨阳"
)
CITIES = [
    "北京",
    "上海",
    "广州",
    "深圳",
    "杭州",
    "成都",
    "武汉",
    "南京",
    "西安",
    "重庆",
    "苏州",
    "天津",
    "长沙",
    "郑州",
    "青岛",
    "厦门",
    "昆明",
    "合肥",
    "沈阳",
    "哈尔滨",
]
INVALID = [
    "010-65528899",  # Beijing landline
    "0755 8366 1234",  # Shenzhen landline
    "021-12345678",  # Shanghai landline
    "1380013800",  # 10 digits
    "138001380001",  # 12 digits
    "1390013900a",  # a letter
    "139-0013-90O0",  # letter O for zero
    "",  # empty cell
    "1.38001E+10",  # Excel scientific notation
    "12345678901",  # 11 digits, no mobile range
    "+44 20 7946 0958",  # London
    "0571-88886666",  # Hangzhou landline
    "1520000111",  # short
    "无",  # "none"
    "17012",  # truncated
]
DUPLICATES = 9
SECOND_DIGITS = "3333355558888779"  # 13x, 15x and 18x dominate real lists


def is_mobile(number: str) -> bool:
    """The reference check every valid sample number must pass."""
    parsed = phonenumbers.parse(number, "CN")
    kind = phonenumbers.number_type(parsed)
    mobile = kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
    return mobile and phonenumbers.is_valid_number(parsed)


def mobile_number(rng: random.Random) -> str:
    """A random valid mainland mobile number."""
    while True:
        number = f"1{rng.choice(SECOND_DIGITS)}{rng.randrange(10**9):09d}"
        if is_mobile(number):
            return number


def messy(number: str, rng: random.Random) -> str:
    """The number as people type it: mostly plain, sometimes prefixed, split or full-width."""
    styles = [
        lambda n: n,
        lambda n: f"+86 {n[:3]}-{n[3:7]}-{n[7:]}",
        lambda n: f"0086{n}",
        lambda n: f"{n[:3]} {n[3:7]} {n[7:]}",
        lambda n: n.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        lambda n: f" {n} ",
        lambda n: f"86{n}",
    ]
    weights = [70, 8, 4, 6, 4, 4, 4]
    return rng.choices(styles, weights)[0](number)


def make_rows(rng: random.Random) -> list[list[str]]:
    """ROWS rows: valid numbers, the INVALID values and DUPLICATES repeats, in shuffled places."""
    kinds = [None] * (ROWS - DUPLICATES - len(INVALID)) + INVALID
    rng.shuffle(kinds)
    rows, numbers = [], []  # numbers: the plain valid number of each row, or None
    for index, kind in enumerate(kinds):
        number = mobile_number(rng) if kind is None else None
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice([1, 2])))
        rows.append(
            [
                messy(number, rng) if number else kind,
                name,
                f"DD20261127{index + 1:04d}",
                rng.choice(CITIES),
            ]
        )
        numbers.append(number)
    for _ in range(DUPLICATES):  # the same person again, further down, maybe typed another way
        earlier = rng.choice([i for i, number in enumerate(numbers) if number])
        place = rng.randrange(earlier + 1, len(rows) + 1)
        rows.insert(place, [messy(numbers[earlier], rng), *rows[earlier][1:]])
        numbers.insert(place, numbers[earlier])
    return rows


def write_csv(rows: list[list[str]], path: Path) -> None:
    """UTF-8 with BOM, as Excel's "CSV UTF-8" saves it."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        csv.writer(out).writerows([HEADER, *rows])


def write_xlsx(rows: list[list[str]], path: Path) -> None:
    """The same rows, the phone column stored as text the way a careful user formats it."""
    book = Workbook()
    sheet = book.active
    sheet.title = "名单"
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    for (cell,) in sheet.iter_rows(min_row=2, max_col=1):
        cell.number_format = "@"
    book.save(path)


def main() -> None:
    rows = make_rows(random.Random(SEED))
    write_csv(rows, HERE / "recipients.csv")
    write_xlsx(rows, HERE / "recipients.xlsx")
    print(f"wrote {len(rows)} rows to {HERE / 'recipients.csv'} and {HERE / 'recipients.xlsx'}")


if __name__ == "__main__":
    main()
