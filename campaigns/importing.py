"""Import: read a recipients file, validate and render every row, store it as one transaction.

Every row is stored: accepted rows as ``pending`` messages with a messageId, rejected rows as
``invalid`` with a reason code and a plain-English explanation.  The file is read a chunk at a
time and every chunk goes into the same transaction, so memory stays flat and an import that
fails half-way (a bad row, Ctrl-C, a full disk) leaves the campaign as it was.  Importing the
same file (the same SHA-256 of its bytes) into the same campaign again adds nothing, and a
number the campaign already has, from this file or an earlier one, is rejected as a duplicate.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, cast

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from campaigns import ids
from campaigns.errors import UserError
from campaigns.intake.phones import normalise_phones, phone_keys
from campaigns.intake.read import Chunk, read_recipients
from campaigns.intake.rejects import RejectsFile, check_rejects_path
from campaigns.intake.render import (
    BLOCKED,
    MAX_LENGTH,
    blocked_texts,
    check_placeholders,
    join_text,
    load_template,
    render,
    segments,
    template_warnings,
    utf16_lengths,
)
from campaigns.intake.seen import SeenNumbers
from campaigns.reasons import REASONS as ALL_REASONS
from campaigns.store import intake_queries
from campaigns.store.campaign_queries import utcnow
from campaigns.store.db import Store
from campaigns.store.models import INVALID, PENDING, SUPPRESSED, Campaign, Import

REASONS = ALL_REASONS  # reason code -> plain-English explanation
SAMPLE_SIZE = 5  # rendered messages shown in the summary
REJECTS_SHOWN = 100  # rejected rows kept in the summary; the rejects file has them all
R = TypeVar("R")
_END = object()


@dataclass
class ImportSummary:
    """What an import stored, or with ``dry_run`` would store.

    Segments follow the concatenated-SMS rule for UCS-2 text (3GPP TS 23.038 / 23.040), which
    Chinese providers, Zhenzi included, apply to every message: one SMS carries 140 bytes, 70
    UTF-16 units; a longer text is sent in parts whose 6-byte User Data Header leaves 134
    bytes, 67 units, each.  The provider bills one SMS per part, so ``cost`` = ``segments``.
    """

    campaign: str
    source: str  # the file name
    phone_column: str = ""  # the header of the column the phone numbers were read from
    rows: int = 0  # data rows read (blank rows are skipped)
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason code -> rows, most first
    segments: int = 0  # SMS segments of all accepted messages
    largest: int = 0  # segments of the longest accepted message
    largest_characters: int = 0  # its length in UTF-16 units, as the provider counts
    warnings: list[str] = field(default_factory=list)  # plain English, stored on the campaign
    sample: list[str] = field(default_factory=list)  # the first rendered messages
    rejects: pd.DataFrame = field(default_factory=pd.DataFrame)  # first rejected rows
    dry_run: bool = False  # nothing was stored
    already_imported: bool = False  # this file was imported into the campaign before: no change
    # A different file added to a campaign that had imports: their names, and the recipients
    # (accepted rows) the campaign holds with this one.
    earlier_files: list[str] = field(default_factory=list)
    campaign_total: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def cost(self) -> int:
        """Estimated cost in SMS: the provider bills each segment as one SMS."""
        return self.segments


def import_file(
    store: Store,
    path: str | Path,
    *,
    campaign: str,
    message: str | None = None,
    template_file: str | Path | None = None,
    phone_column: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    allow_international: bool = False,
    marketing: bool = False,
    dry_run: bool = False,
    rejects_path: str | Path | None = None,
    template_id: str | None = None,
    params: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Read, validate and store a recipients file as campaign ``campaign``, in one transaction.

    The message is ``message`` or the text of ``template_file``.  ``allow_international``
    accepts valid non-mainland mobile numbers (stored in E.164); ``marketing`` asks for an
    opt-out phrase.  ``dry_run`` stores nothing; ``rejects_path`` (.csv or .xlsx) receives every
    rejected row with its reason.  Mistakes in the input raise UserError before anything is
    stored.  With ``template_id`` the campaign sends through an approved v2 template:
    ``params`` ("{姓名},{订单号}") is rendered per row into its templateParams.
    """
    intake_queries.check_campaign_name(campaign)
    if template_id:
        if not params or message or template_file:
            raise UserError("--template-id needs --params (and no --message / --template-file)")
        message = params
    template = load_template(message, template_file)
    path = Path(path)
    rejects_file = check_rejects_path(rejects_path, path) if rejects_path is not None else None
    recipients = read_recipients(path, phone_column=phone_column, encoding=encoding, sheet=sheet)
    check_placeholders(template, recipients.columns, recipients.where)
    summary = ImportSummary(
        campaign=campaign,
        source=recipients.source,
        phone_column=recipients.phone_column,
        dry_run=dry_run,
        warnings=template_warnings(template, marketing=marketing),
    )
    digest = _sha256(path)
    try:
        with store.session.begin() as session:
            target = intake_queries.campaign_for_import(session, campaign, lock=not dry_run)
            if target is not None and target.template != template:
                raise UserError(
                    f"campaign {campaign!r} already exists with another message template;"
                    " use a new campaign name or the same message"
                )
            earlier = target and intake_queries.find_import(session, target.id, digest)
            if earlier:
                recipients.chunks.close()
                summary.rows, summary.accepted = earlier.rows, earlier.accepted
                summary.already_imported = True
                return summary
            if target is None and not dry_run:
                target = intake_queries.create_campaign(
                    session,
                    name=campaign,
                    token=ids.new_campaign_token(),
                    template=template,
                    template_id=template_id,
                    source=recipients.source,
                    created_at=utcnow(),
                )
            if target is not None:
                summary.earlier_files = intake_queries.earlier_imports(session, target.id)
            record = None
            if not dry_run:
                assert target is not None
                record = intake_queries.start_import(
                    session,
                    campaign_id=target.id,
                    sha256=digest,
                    source=recipients.source,
                    imported_at=utcnow(),
                )
            columns = ["row", *recipients.columns, "reason"]
            writer = RejectsFile(rejects_file, columns) if rejects_file else nullcontext()
            with (
                writer as rejects,
                closing(
                    _Run(
                        session,
                        target,
                        template,
                        summary,
                        phone_column=recipients.phone_column,
                        allow_international=allow_international,
                        rejects=rejects,
                        v2_params=bool(template_id),
                        record=record,
                    )
                ) as run,
                ThreadPoolExecutor(1) as pool,  # shut down (its thread done) before run closes
            ):
                for statements in _one_ahead(pool, run.prepare, recipients.chunks):
                    if statements is not None:
                        intake_queries.MessageInsert.execute(session, statements)
                    if on_progress:
                        on_progress(summary.rows)
            run.finish()
    except OperationalError as exc:  # a full disk, a locked database, ...
        reason = str(exc.orig).splitlines()[0]
        raise UserError(
            f"{recipients.source}: nothing was imported, the database refused it ({reason})"
        ) from None
    except IntegrityError:
        raise UserError(
            f"{recipients.source}: nothing was imported: another import into campaign"
            f" {campaign!r} finished at the same time; run the import again"
        ) from None
    return summary


class _Run:
    """One import's state across chunks: numbers seen, messageIds given out, the summary.

    ``prepare`` runs on a worker thread one chunk ahead of the inserts; it never touches the
    database session, which stays on the calling thread.
    """

    def __init__(
        self,
        session: Session,
        target: Campaign | None,
        template: str,
        summary: ImportSummary,
        *,
        phone_column: str,
        allow_international: bool,
        rejects: RejectsFile | None,
        v2_params: bool = False,
        record: Import | None = None,
    ) -> None:
        self.target, self.template, self.summary = target, template, summary
        self.record = record  # the import's row (None in a dry run)
        # v2: each comma-separated part of the template is one templateParams entry.
        self.params = template.split(",") if v2_params else None
        self.suppressed = intake_queries.suppressed_phones(session)
        self.phone_column, self.allow_international = phone_column, allow_international
        self.rejects = rejects
        self.before = SeenNumbers()  # numbers the campaign had before this import
        self.here = SeenNumbers()  # numbers accepted from this file so far
        if target is not None:
            for phones, rows in intake_queries.accepted_phones(session, target.id):
                keys = phone_keys(pd.Series(phones, dtype="str"))
                order = np.argsort(keys)
                self.before.add(keys[order], np.asarray(rows)[order])
        self.next_sequence = self.before.count + 1
        self.rejected: Counter[str] = Counter()
        self.blocked: dict[str, tuple[int, int]] = {}  # kind -> (messages, first row)
        constants = {
            "campaign_id": target and target.id,
            "import_id": record and record.id,
            "attempts": 0,
            "queued_at": utcnow(),
        }
        self.insert = intake_queries.MessageInsert(session.get_bind().dialect, constants)

    def close(self) -> None:
        self.before.close()
        self.here.close()

    def prepare(self, chunk: Chunk) -> list[tuple[str, list[tuple]]] | None:
        """Examine a chunk, add it to the summary and the rejects file, and return the
        statements that insert it (None in a dry run, where nothing is)."""
        verdicts = self.examine(chunk)
        rejected = self.tally(chunk, verdicts)
        if self.rejects is not None:
            self.rejects.write(rejected)
        return None if self.summary.dry_run else self.insert.prepare(self.rows(chunk, verdicts))

    def examine(self, chunk: Chunk) -> pd.DataFrame:
        """Every row's verdict, column-wise: number, message, length and the first reason it
        fails for ("" when accepted), in the order the user would fix them."""
        content, render_reason, params = self._render(chunk.frame)
        raw = chunk.frame[self.phone_column]
        phone, phone_reason = normalise_phones(raw, allow_international=self.allow_international)
        units = utf16_lengths(content)
        reason = phone_reason.where(phone_reason != "", render_reason)
        reason = reason.mask((reason == "") & (units > MAX_LENGTH), "too_long")
        verdicts = pd.DataFrame(
            {
                "row": chunk.row_numbers,
                "raw_phone": raw,
                "phone": phone,
                "content": content,
                "units": units,
                "reason": reason,
                "detail": "",
                "params": params,
            }
        )
        self._mark_duplicates(verdicts)
        opted_out = (verdicts["reason"] == "") & verdicts["phone"].isin(self.suppressed)
        verdicts.loc[opted_out, "reason"] = SUPPRESSED
        rejected = verdicts["reason"] != ""
        verdicts["text"] = _reason_text(verdicts[rejected]).reindex(verdicts.index)
        return verdicts

    def _render(self, frame: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series | None]:
        """(content, reason, v2 params as JSON) per row; content shows the params for v2."""
        if self.params is None:
            return (*render(self.template, frame), None)
        rendered = [render(part, frame) for part in self.params]
        reason = rendered[0][1]
        for _, part_reason in rendered[1:]:
            reason = reason.where(reason != "", part_reason)
        values = [part for part, _ in rendered]
        content = values[0].str.cat(values[1:], sep=",") if len(values) > 1 else values[0]
        as_json = pd.Series(
            [json.dumps(list(row), ensure_ascii=False) for row in zip(*values, strict=True)],
            index=frame.index,
            dtype=object,
        )
        return content, reason, as_json

    def _mark_duplicates(self, verdicts: pd.DataFrame) -> None:
        """Reject a number the campaign already has or an earlier row has; say which row.

        The chunk's numbers are sorted once (stable, so equal numbers keep their row order):
        the first of each run of equal numbers is the one that may be new.
        """
        valid = np.flatnonzero((verdicts["reason"] == "").to_numpy())
        keys = phone_keys(verdicts["phone"].iloc[valid])
        order = np.argsort(keys, kind="stable")
        keys, rows, valid = keys[order], verdicts["row"].to_numpy()[valid][order], valid[order]
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        first_row = rows[np.maximum.accumulate(np.where(first, np.arange(len(keys)), 0))]
        in_campaign = self.before.rows_of(keys)
        earlier = self.here.rows_of(keys)
        earlier = np.where(earlier > 0, earlier, np.where(first, 0, first_row))
        new = (in_campaign == 0) & (earlier == 0)
        self.here.add(keys[new], rows[new])
        positions = valid[~new]
        verdicts.iloc[positions, verdicts.columns.get_loc("reason")] = "duplicate"
        verdicts.iloc[positions, verdicts.columns.get_loc("detail")] = [
            f"first at row {before} of an earlier import" if before else f"first at row {row}"
            for before, row in zip(in_campaign[~new], earlier[~new], strict=True)
        ]

    def tally(self, chunk: Chunk, verdicts: pd.DataFrame) -> pd.DataFrame:
        """Add the chunk to the summary; return its rejected rows as the rejects file has them."""
        summary = self.summary
        accepted = (verdicts["reason"] == "").to_numpy()
        content, units = verdicts["content"][accepted], verdicts["units"].to_numpy()[accepted]
        summary.rows += len(verdicts)
        summary.accepted += int(accepted.sum())
        summary.segments += int(segments(units).sum())
        if len(units) and units.max() > summary.largest_characters:
            summary.largest_characters = int(units.max())
            summary.largest = int(segments(units.max()))
        summary.sample += content.head(SAMPLE_SIZE - len(summary.sample)).tolist()
        kinds = blocked_texts(self.template, content)
        for kind, count in kinds[kinds != ""].value_counts().items():
            seen, first = self.blocked.get(kind, (0, 0))
            row = int(verdicts["row"][accepted][kinds == kind].iloc[0])
            self.blocked[kind] = (seen + count, first or row)
        self.rejected.update(verdicts["reason"][~accepted].value_counts().to_dict())
        rejected = pd.concat(
            [
                verdicts["row"][~accepted],
                chunk.frame[~accepted],
                verdicts["text"][~accepted].rename("reason"),
            ],
            axis=1,
        )
        shown = rejected.head(REJECTS_SHOWN - len(summary.rejects)).reset_index(drop=True)
        if summary.rejects.empty:
            summary.rejects = shown
        elif len(shown):
            summary.rejects = pd.concat([summary.rejects, shown], ignore_index=True)
        return rejected

    def rows(self, chunk: Chunk, verdicts: pd.DataFrame) -> pa.Table:
        """The chunk's messages: accepted ones pending with a messageId, the rest invalid."""
        assert self.target is not None  # only an import that stores rows makes them
        accepted = verdicts["reason"] == ""
        count = int(accepted.sum())
        message_id = pd.Series(None, index=verdicts.index, dtype="str")
        message_id[accepted] = ids.message_ids(self.target.token, self.next_sequence, count).array
        self.next_sequence += count
        columns = {
            "row_number": verdicts["row"],
            "raw_phone": verdicts["raw_phone"],
            "phone": verdicts["phone"].where(accepted),
            "content": verdicts["content"].where(accepted, ""),
            "segments": np.where(accepted, segments(verdicts["units"]), 0),
            "state": np.where(
                accepted, PENDING, np.where(verdicts["reason"] == SUPPRESSED, SUPPRESSED, INVALID)
            ),
            "reason": verdicts["reason"].where(~accepted),
            "error_text": verdicts["text"],
            "fields": _fields_json(chunk.frame),
            "message_id": message_id,
        }
        if self.params is not None:
            columns["params"] = verdicts["params"].where(accepted)
        return pa.table(columns)

    def finish(self) -> None:
        """Complete the summary; unless dry, complete the import record and keep the warnings."""
        summary = self.summary
        summary.rejected = dict(self.rejected.most_common())
        summary.campaign_total = self.before.count + summary.accepted
        for kind, (count, row) in self.blocked.items():
            summary.warnings.append(BLOCKED[kind].format(count=count, row=row))
        if self.record is None or self.target is None:  # a dry run
            return
        known = json.loads(self.target.warnings or "[]")
        self.target.warnings = json.dumps(
            list(dict.fromkeys(known + summary.warnings)), ensure_ascii=False
        )
        self.record.rows, self.record.accepted = summary.rows, summary.accepted


def _one_ahead(pool: Executor, work: Callable[[Chunk], R], chunks: Iterator[Chunk]) -> Iterator[R]:
    """``work(chunk)`` for each chunk, run in ``pool`` one chunk ahead of the consumer: the next
    chunk is read and examined while this one is inserted (SQLite lets go of the GIL while it
    writes, pyarrow while it computes)."""

    def step() -> R | object:
        chunk = next(chunks, None)
        return _END if chunk is None else work(chunk)

    future = pool.submit(step)
    while (result := future.result()) is not _END:
        future = pool.submit(step)
        yield cast(R, result)


def _reason_text(verdicts: pd.DataFrame) -> pd.Series:
    """The plain-English reason of each row, with its detail (which earlier row, which column)."""
    parts = verdicts["reason"].str.extract(r"^(?P<code>[^:]*):?(?P<column>.*)$")
    code, column = parts["code"], parts["column"]
    detail = verdicts["detail"].where(column == "", "column " + column)
    text = code.map(REASONS).fillna("").astype("str")
    return text.where(detail == "", text + " (" + detail + ")")


def _fields_json(frame: pd.DataFrame) -> pd.Series:
    """Each row's cells as a JSON object, joined in one pass (pandas' to_json took ~2 s a
    million rows).  Only values holding a quote, backslash or control character need json."""
    pieces: list[str | pd.Series] = []
    for position, name in enumerate(frame.columns):
        values = frame[name]
        special = values.str.contains(r'["\\\x00-\x1f]', regex=True)
        if special.any():
            escaped = values[special].map(lambda value: json.dumps(value, ensure_ascii=False)[1:-1])
            values = values.mask(special, escaped)
        pieces += [
            "{" if position == 0 else ",",
            json.dumps(name, ensure_ascii=False),
            ':"',
            values,
            '"',
        ]
    return join_text([*pieces, "}"], frame.index)


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
