"""Crowd votes collected elsewhere, brought into a dataset: four file formats, one writer.

Formats (``fmt``):

* ``long`` — crowd-kit's long CSV ``task,worker,label`` (optional ``shown_label``,
  ``suggested_label``). ``task`` is the item's file name (``Item.name``), or with ``by_index``
  its index (``index_base`` 0 or 1: the crowd-truth files number tasks from 1).
* ``mturk-results`` — an MTurk batch results CSV (``HITId,AssignmentId,WorkerId,...,
  Answer.<field>``). Per row the answers come from ``Answer.answers`` (the JSON list our task
  pages post: ``item`` is the item's database id), else the ``Answer.item_<id>`` fields our pages
  post too, else any ``Answer.<key>`` whose key is an item's name (or index with ``by_index``),
  as in a layout whose radio buttons are named after the image file. Other ``Answer.*`` columns
  are ignored; rows whose ``AssignmentStatus`` is ``Rejected`` are skipped.
* ``turkle`` — Turkle's batch results CSV: the same ``Input.*`` / ``Answer.*`` columns as MTurk's;
  the worker is ``Turkle.Username`` (else ``WorkerId``).
* ``label-errors`` — a label-errors ``*_mturk.json``: per flagged example, counts of 5 workers'
  choices among given / guessed / both / neither, written as ``review`` votes (given → 0,
  guessed → 1, both → 2, neither → 3; ``shown_label`` the given label, ``suggested_label`` the
  guessed one) from anonymous workers, one per (file, example, vote). ``id`` is the item's index
  with ``by_index``, else its name.

An answer is a class index or a class name for ``label`` / ``complementary`` votes, 0-2 or
correct / not sure / wrong for ``verify``, 0-3 or given / suggested / both / neither for
``review``, 0/1 for ``select``. A verify or select vote without ``shown_label`` asks about the
item's current label; a review vote without one about its given label.

Workers: MTurk ids stay under the ``mturk`` provider (an imported worker is the same person our
own MTurk batches meet); the others are ``imported``. Every id is hashed on arrival
(:func:`~annotation.services.worker_get_or_create`) and never stored or shown.

All or nothing: the whole file is read and checked first; the first bad row refuses the import
with its line (entry, for JSON), column and value, and nothing is written. Idempotent: a vote is
skipped when an imported vote of the same (worker, item, kind) exists, and a later row repeating
(worker, item) within a file is skipped too (a gold item may reach a worker on several HITs), so
importing a file twice adds nothing.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from .aggregation import REVIEW_BOTH, REVIEW_GIVEN, REVIEW_NEITHER, REVIEW_SUGGESTED
from .exceptions import AnnotationError
from .label_errors import mturk_json_read
from .models import Dataset, Item, TaskKind, Vote, Worker
from .services import votes_record, worker_get_or_create

Progress = Callable[[int, int], None]
FORMATS = ("long", "mturk-results", "turkle", "label-errors")
MAX_FILE_BYTES = 512 * 1024 * 1024
_WORDS = {
    TaskKind.VERIFY: {"correct": 0, "not sure": 1, "not_sure": 1, "unsure": 1, "wrong": 2},
    TaskKind.REVIEW: {"given": 0, "suggested": 1, "guessed": 1, "both": 2, "neither": 3},
    TaskKind.SELECT: {"false": 0, "no": 0, "true": 1, "yes": 1, "on": 1},
}
_RANGE = {TaskKind.VERIFY: 3, TaskKind.REVIEW: 4, TaskKind.SELECT: 2}
_LABEL_ERRORS_KEYS = {
    "given": REVIEW_GIVEN,
    "guessed": REVIEW_SUGGESTED,
    "both": REVIEW_BOTH,
    "neither": REVIEW_NEITHER,
}
_ITEM_FIELD = re.compile(r"item_([0-9]{1,12})")


class VoteImportError(AnnotationError, ValueError):
    """A vote import was refused; nothing was written."""


@dataclass
class ParsedVote:
    where: str  # "FILE line N" / "FILE entry N": for messages
    provider: str
    worker: str  # raw id: hashed on the way in, never stored or shown
    item_id: int
    fields: dict[str, Any]


@dataclass
class VoteImportOutcome:
    """What an import found and wrote."""

    rows: int = 0
    votes_read: int = 0
    written: int = 0
    skipped_existing: int = 0
    skipped_repeated: int = 0
    skipped_rows: int = 0
    workers: int = 0
    notes: list[str] = field(default_factory=list)


class _Items:
    """The dataset's items, looked up by name, index or database id."""

    def __init__(self, dataset: Dataset) -> None:
        self.by_pk: dict[int, Item] = {}
        self.by_index: dict[int, Item] = {}
        self.by_name: dict[str, Item] = {}
        fields = ("id", "index", "name", "label", "given_label")
        for item in Item.objects.filter(dataset=dataset).only(*fields).iterator(chunk_size=5000):
            self.by_pk[item.pk] = item
            self.by_index[item.index] = item
            self.by_name[item.name] = item

    def find(self, key: str, *, by_index: bool, index_base: int) -> Item | None:
        key = key.strip()
        if by_index:
            if not re.fullmatch(r"[0-9]{1,12}", key):
                return None
            return self.by_index.get(int(key) - index_base)
        return self.by_name.get(key)


class _Reader:
    """Turns one answer's text into vote fields for the import's kind."""

    def __init__(self, dataset: Dataset, kind: str) -> None:
        self.kind, self.k = kind, dataset.num_classes
        self.names = {str(n): i for i, n in enumerate(dataset.class_names)}
        self.lower = {str(n).lower(): i for i, n in enumerate(dataset.class_names)}

    def cls(self, text: str, where: str, column: str) -> int:
        value = text.strip()
        if re.fullmatch(r"-?[0-9]{1,12}", value):
            if 0 <= int(value) < self.k:
                return int(value)
        elif value in self.names or value.lower() in self.lower:
            return self.names.get(value, self.lower.get(value.lower(), -1))
        raise VoteImportError(
            f"{where}, column {column}: value {_shown(value)} is not a class "
            f"(0..{self.k - 1} or a class name)"
        )

    def answer(self, text: str, where: str, column: str) -> int:
        if self.kind in (TaskKind.LABEL, TaskKind.COMPLEMENTARY):
            return self.cls(text, where, column)
        value = text.strip()
        words = _WORDS[TaskKind(self.kind)]
        if value.lower() in words:
            return words[value.lower()]
        if re.fullmatch(r"[0-9]{1,3}", value) and int(value) < _RANGE[TaskKind(self.kind)]:
            return int(value)
        raise VoteImportError(
            f"{where}, column {column}: value {_shown(value)} is not a {self.kind} answer "
            f"(0..{_RANGE[TaskKind(self.kind)] - 1} or {' / '.join(words)})"
        )

    def fields(self, answer: int, item: Item, row: dict[str, str], where: str) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "answer": answer}
        shown = (row.get("shown_label") or "").strip()
        suggested = (row.get("suggested_label") or "").strip()
        if self.kind in (TaskKind.VERIFY, TaskKind.SELECT):
            default = item.label if item.label is not None else item.given_label
            out["shown_label"] = self.cls(shown, where, "shown_label") if shown else default
        elif self.kind == TaskKind.REVIEW:
            out["shown_label"] = (
                self.cls(shown, where, "shown_label") if shown else item.given_label
            )
            if suggested:
                out["suggested_label"] = self.cls(suggested, where, "suggested_label")
        return out


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def _open_csv(path: Path) -> tuple[Any, csv.DictReader]:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise VoteImportError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        fh = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed by callers
    except OSError as exc:
        raise VoteImportError(f"{path}: cannot read ({exc.strerror})") from None
    reader = csv.DictReader(fh)
    try:
        header = reader.fieldnames
    except (UnicodeDecodeError, csv.Error) as exc:
        fh.close()
        raise VoteImportError(f"{path} line 1: not a readable CSV file ({exc})") from None
    if not header:
        fh.close()
        raise VoteImportError(f"{path}: empty file (no header)")
    return fh, reader


def _csv_rows(path: Path, reader: csv.DictReader) -> Iterator[tuple[str, dict[str, str]]]:
    try:
        for row in reader:
            where = f"{path} line {reader.line_num}"
            if None in row:
                raise VoteImportError(f"{where}: more fields than the header has")
            yield where, {k: (v or "") for k, v in row.items()}
    except (UnicodeDecodeError, csv.Error) as exc:
        raise VoteImportError(f"{path} line {reader.line_num + 1}: unreadable ({exc})") from None


def _missing(path: Path, header: list[str], *columns: str) -> None:
    for column in columns:
        if column not in header:
            raise VoteImportError(
                f"{path} line 1: missing column {column!r} (header: {','.join(header)[:200]})"
            )


def _parse_long(path, items, reader_, opts, outcome) -> list[ParsedVote]:
    fh, reader = _open_csv(path)
    votes = []
    with fh:
        _missing(path, list(reader.fieldnames or ()), "task", "worker", "label")
        for where, row in _csv_rows(path, reader):
            outcome.rows += 1
            task, worker = row["task"].strip(), row["worker"].strip()
            if not worker:
                raise VoteImportError(f"{where}, column worker: empty worker id")
            item = items.find(task, **opts)
            if item is None:
                what = "item index" if opts["by_index"] else "item name"
                raise VoteImportError(
                    f"{where}, column task: value {_shown(task)} is no {what} in the dataset"
                )
            answer = reader_.answer(row["label"], where, "label")
            fields = reader_.fields(answer, item, row, where)
            votes.append(ParsedVote(where, Worker.Provider.IMPORTED, worker, item.pk, fields))
    return votes


def _page_answers(text: str, where: str, items: _Items, reader_: _Reader) -> list[tuple]:
    try:
        rows = json.loads(text)
    except (ValueError, RecursionError):
        raise VoteImportError(f"{where}, column Answer.answers: not valid JSON") from None
    if not isinstance(rows, list):
        raise VoteImportError(f"{where}, column Answer.answers: not a list of answers")
    out = []
    for row in rows:
        if not isinstance(row, dict):
            raise VoteImportError(f"{where}, column Answer.answers: an answer is not an object")
        item = items.by_pk.get(row.get("item")) if isinstance(row.get("item"), int) else None
        if item is None:
            raise VoteImportError(
                f"{where}, column Answer.answers: item {_shown(row.get('item'))} is not "
                "in the dataset"
            )
        answer = reader_.answer(str(row.get("answer")), where, "Answer.answers")
        duration = row.get("duration_ms")
        extra = {"duration_ms": duration} if isinstance(duration, int) and duration >= 0 else {}
        out.append((item, answer, extra))
    return out


def _parse_results(path, items, reader_, opts, outcome, *, turkle: bool) -> list[ParsedVote]:
    fh, reader = _open_csv(path)
    votes = []
    with fh:
        header = list(reader.fieldnames or ())
        worker_col = "Turkle.Username" if turkle and "Turkle.Username" in header else "WorkerId"
        _missing(path, header, worker_col)
        answer_cols = [c for c in header if c.startswith("Answer.")]
        if not answer_cols:
            raise VoteImportError(f"{path} line 1: no Answer.* column")
        item_cols: dict[str, Item] = {}
        for col in answer_cols:
            key = col[len("Answer.") :]
            m = _ITEM_FIELD.fullmatch(key)
            item = items.by_pk.get(int(m.group(1))) if m else items.find(key, **opts)
            if item is not None:
                item_cols[col] = item
            elif m:
                raise VoteImportError(f"{path} line 1, column {col}: no such item in the dataset")
        if "Answer.answers" not in header and not item_cols:
            raise VoteImportError(
                f"{path} line 1: no Answer.* column names an item of the dataset "
                "(expected Answer.answers, Answer.item_<id> or Answer.<item name>)"
            )
        provider = Worker.Provider.IMPORTED if turkle else Worker.Provider.MTURK
        for where, row in _csv_rows(path, reader):
            outcome.rows += 1
            if row.get("AssignmentStatus", "").strip().lower() == "rejected":
                outcome.skipped_rows += 1
                continue
            worker = row[worker_col].strip()
            if not worker:
                raise VoteImportError(f"{where}, column {worker_col}: empty worker id")
            if row.get("Answer.answers", "").strip():
                found = _page_answers(row["Answer.answers"], where, items, reader_)
            else:
                found = [
                    (item, reader_.answer(row[col], where, col), {})
                    for col, item in item_cols.items()
                    if row[col].strip()
                ]
            for item, answer, extra in found:
                fields = {**reader_.fields(answer, item, {}, where), **extra}
                raw = f"turkle:{worker}" if turkle else worker
                votes.append(ParsedVote(where, provider, raw, item.pk, fields))
    return votes


def _parse_label_errors(path, items, reader_, opts, outcome, kind) -> list[ParsedVote]:
    if kind != TaskKind.REVIEW:
        raise VoteImportError(f"{path}: label-errors files hold review votes; use --kind review")
    try:
        entries = mturk_json_read(path, max_bytes=MAX_FILE_BYTES)
    except ValueError as exc:
        raise VoteImportError(str(exc)) from None
    votes = []
    for n, entry in enumerate(entries, start=1):
        outcome.rows += 1
        where = f"{path} entry {n}"
        if not isinstance(entry, dict):
            raise VoteImportError(f"{where}: not an object")
        for key in ("id", "given_original_label", "our_guessed_label", "mturk"):
            if key not in entry:
                raise VoteImportError(f"{where}: missing field {key!r}")
        item = items.find(str(entry["id"]), **opts)
        if item is None:
            raise VoteImportError(
                f"{where}, field id: value {_shown(entry['id'])} is no item of the dataset"
            )
        given = reader_.cls(str(entry["given_original_label"]), where, "given_original_label")
        guessed = reader_.cls(str(entry["our_guessed_label"]), where, "our_guessed_label")
        counts = entry["mturk"]
        if not isinstance(counts, dict) or not set(counts) <= set(_LABEL_ERRORS_KEYS):
            raise VoteImportError(
                f"{where}, field mturk: expected counts of given / guessed / both / neither, "
                f"got {_shown(counts)}"
            )
        j = 0
        for key, answer in _LABEL_ERRORS_KEYS.items():
            count = counts.get(key, 0)
            if not isinstance(count, int) or not 0 <= count <= 100:
                raise VoteImportError(f"{where}, field mturk.{key}: value {_shown(count)}")
            for _ in range(count):
                j += 1
                raw = f"label-errors:{path.name}:{entry['id']}:{j}"
                fields = {
                    "kind": kind,
                    "answer": answer,
                    "shown_label": given,
                    "suggested_label": guessed,
                }
                votes.append(ParsedVote(where, Worker.Provider.IMPORTED, raw, item.pk, fields))
    return votes


def votes_import(
    dataset: Dataset,
    path: Path | str,
    *,
    kind: str,
    fmt: str,
    by_index: bool = False,
    index_base: int | None = None,
    progress: Progress | None = None,
) -> VoteImportOutcome:
    """Read ``path`` in format ``fmt`` and write its votes of ``kind`` to ``dataset``.

    Raises:
        VoteImportError: naming the file, line (or entry), column and value of the first
            problem; nothing is written then.
    """
    path = Path(path)
    if kind not in TaskKind.values:
        raise VoteImportError(f"unknown kind {kind!r}; use one of {', '.join(TaskKind.values)}")
    if fmt not in FORMATS:
        raise VoteImportError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if index_base not in (None, 0, 1):
        raise VoteImportError(f"index base must be 0 or 1, got {index_base}")
    outcome = VoteImportOutcome()
    items, reader_ = _Items(dataset), _Reader(dataset, kind)
    if index_base is None:
        index_base = _index_base_guess(path, fmt, by_index, len(items.by_index), outcome)
    opts = {"by_index": by_index, "index_base": index_base}
    if fmt == "long":
        parsed = _parse_long(path, items, reader_, opts, outcome)
    elif fmt == "label-errors":
        parsed = _parse_label_errors(path, items, reader_, opts, outcome, kind)
    else:
        turkle = fmt == "turkle"
        parsed = _parse_results(path, items, reader_, opts, outcome, turkle=turkle)
    if not parsed:
        raise VoteImportError(f"{path}: no votes found")
    outcome.votes_read = len(parsed)
    _write(dataset, kind, parsed, outcome, progress or (lambda done, total: None))
    return outcome


def _index_base_guess(path: Path, fmt: str, by_index: bool, n: int, outcome) -> int:
    """0, unless a long file's task numbers run exactly 1..N over an N-item dataset (as the
    published crowd-truth files do): then they are read as numbered from 1, and a note says so."""
    if not (by_index and fmt == "long"):
        return 0
    fh, reader = _open_csv(path)
    with fh:
        if "task" not in (reader.fieldnames or ()):
            return 0
        tasks = {row.get("task", "").strip() for row in reader}
    if not tasks or not all(re.fullmatch(r"[0-9]{1,12}", t) for t in tasks):
        return 0
    numbers = {int(t) for t in tasks}
    if min(numbers) >= 1 and max(numbers) == n:
        outcome.notes.append(
            f"task numbers run 1..{n} over {n} items: read as numbered from 1 "
            "(pass --index-base 0 to read them as 0-based)"
        )
        return 1
    return 0


def _write(dataset, kind, parsed: list[ParsedVote], outcome, progress: Progress) -> None:
    total = len(parsed)
    with transaction.atomic():
        worker_ids: dict[tuple[str, str], int] = {}
        for n, vote in enumerate(parsed, start=1):
            key = (vote.provider, vote.worker)
            if key not in worker_ids:
                worker_ids[key] = worker_get_or_create(vote.provider, vote.worker).pk
            if n % 500 == 0:
                progress(n // 2, total)
        outcome.workers = len(worker_ids)
        existing = set(
            Vote.objects.filter(
                item__dataset=dataset,
                kind=kind,
                source=Vote.Source.IMPORTED,
            )
            .order_by()
            .values_list("worker_id", "item_id")
            .iterator(chunk_size=5000)
        )
        seen: set[tuple[int, int]] = set()
        by_worker: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for vote in parsed:
            pair = (worker_ids[(vote.provider, vote.worker)], vote.item_id)
            if pair in existing:
                outcome.skipped_existing += 1
                continue
            if pair in seen:
                outcome.skipped_repeated += 1
                continue
            seen.add(pair)
            by_worker[pair[0]].append({"item_id": vote.item_id, **vote.fields})
        written = 0
        for wid, rows in by_worker.items():
            written += votes_record(rows, worker_id=wid, source=Vote.Source.IMPORTED)
            progress(total // 2 + written // 2, total)
        outcome.written = written
    progress(total, total)
