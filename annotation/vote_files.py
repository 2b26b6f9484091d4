"""Vote and label files for ``aggregate_votes``' file mode: no Django, so the command can run
without starting the site.

Reads crowd-kit's long format (``task,worker,label``; extra columns are ignored, so the
``votes-csv`` export reads as is) and writes ``task,label,confidence`` CSV or ``.npz``. The
common file (no quotes, no ``kind`` column, every line with the header's fields, integer labels
in range) is parsed with whole-buffer numpy operations; any other file goes through the csv
module row by row, and that reader names the file, line and problem of anything it refuses.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from annotation.aggregation.types import REVIEW_NEITHER, REVIEW_SUGGESTED
from annotation.file_commands import FileCommandError

_ROW_SUM_ATOL = 1e-3  # rows of predicted probabilities may sum to 1 within this
_MAX_FAST_ID = 256  # longer task or worker ids (in bytes) are read row by row


class VoteFileError(FileCommandError):
    """A file that cannot be used; the message names the file and the problem."""


@dataclass
class ParsedVotes:
    item: np.ndarray  # (V,) int64
    worker: np.ndarray  # (V,) int64
    label: np.ndarray  # (V,) int64
    candidates: np.ndarray | None  # (V, C) int64, -1 padded; None when no row lists any
    num_workers: int
    # Task ids in order of first appearance: a list, or the bytes of the file with each id's
    # (start, end) offsets, decoded only when asked for (the writer copies the bytes).
    names: list[str] | None = None
    spans: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def num_tasks(self) -> int:
        return len(self.names) if self.names is not None else self.spans[1].size  # type: ignore[index]

    @property
    def tasks(self) -> list[str]:
        if self.names is None:
            raw, start, end = self.spans  # type: ignore[misc]
            buf = raw.tobytes()
            self.names = [buf[s:e].decode() for s, e in zip(start.tolist(), end.tolist())]
        return self.names


def _int(text: str, where: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise VoteFileError(f"{where}: {what} {text!r} is not an integer") from None


def open_csv(path: Path):
    try:
        return open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - callers use `with`
    except OSError as exc:
        raise VoteFileError(f"{path}: cannot read ({exc.strerror})") from None


# --------------------------------------------------------------------------- the fast reader


def _field_bytes(raw: np.ndarray, start: np.ndarray, width: int) -> np.ndarray:
    """(F, width) bytes from each ``start``; bytes past a field's end are whatever follows it
    (callers mask them)."""
    if int(start.max()) + width > raw.size:
        raw = np.concatenate([raw, np.zeros(width, dtype=np.uint8)])
    return np.lib.stride_tricks.sliding_window_view(raw, width)[start]


def _decimal(raw: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray | None:
    """Fields of 1-18 ASCII digits as int64; None when any field is anything else."""
    length = end - start
    if length.min() < 1 or length.max() > 18:
        return None
    if ((raw[start] - np.uint8(48)) > 9).any():  # cheap refusal of words: the first byte
        return None
    width = int(length.max())
    digits = _field_bytes(raw, start, width) - np.uint8(48)  # a non-digit wraps above 9
    inside = np.arange(width) < length[:, None]
    if ((digits > 9) & inside).any():
        return None
    value = digits[:, 0].astype(np.int64)
    for j in range(1, width):
        live = inside[:, j]
        value = np.where(live, value * 10 + digits[:, j], value)
    return value


def _first_seen_codes(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each key's rank among the distinct keys in order of first appearance, and the position
    of each distinct key's first appearance (in that order)."""
    if keys.size > 1 and keys.dtype == np.int64 and bool((keys[1:] >= keys[:-1]).all()):
        perm = None  # already sorted (tasks listed in order): no sort needed
        ordered = keys
    else:
        perm = np.argsort(keys)
        ordered = keys[perm]
    new = np.empty(keys.size, dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1  # the distinct key of each sorted position
    positions = np.arange(keys.size) if perm is None else perm
    first = np.minimum.reduceat(positions, starts)  # first appearance of each distinct key
    order = np.argsort(first, kind="stable")
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    codes = np.empty(keys.size, dtype=np.int64)
    codes[positions] = rank[group]
    return codes, first[order]


def _string_keys(raw: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """One sortable key per field, equal exactly when the fields' bytes are equal."""
    length = end - start
    width = max(int(length.max()), 1)
    chars = _field_bytes(raw, start, width)
    chars[np.arange(width) >= length[:, None]] = 0
    if width <= 7:
        # up to 7 bytes and the length fit one integer: bytes then length, so "a" != "a\0"
        padded = np.zeros((length.size, 8), dtype=np.uint8)
        padded[:, :width] = chars
        padded[:, 7] = length
        return padded.view(np.uint64).reshape(-1)
    # longer: bytes, the length in two bytes, and a last byte that is never 0 (numpy's bytes
    # type ignores trailing zero bytes)
    padded = np.zeros((length.size, width + 3), dtype=np.uint8)
    padded[:, :width] = chars
    padded[:, width] = length & 255
    padded[:, width + 1] = (length >> 8) & 255
    padded[:, width + 2] = 255
    return padded.view(f"S{width + 3}").reshape(-1)


def _codes(raw: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0.. of the fields' values in order of first appearance, and the field index of
    each distinct value's first appearance."""
    ints = _decimal(raw, start, end)
    canonical = (
        ints is not None
        and not (
            (raw[start] == ord("0")) & (end - start > 1)  # a leading zero: "07" is not "7"
        ).any()
    )
    keys = ints if canonical else _string_keys(raw, start, end)
    return _first_seen_codes(keys)  # type: ignore[arg-type]


def read_votes_plain(data: bytes, *, num_classes: int, kind: str | None) -> ParsedVotes | None:
    """The common file, parsed with whole-buffer numpy operations. Returns None for anything
    else (quotes, a ``kind`` column, a line with another number of fields, an empty field, a
    label that is not an integer in range, text that is not UTF-8); :func:`read_votes` then
    parses it row by row and names the first problem."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b'"' in data:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
        if b"\r" in data:
            return None
    if not data.endswith(b"\n"):
        data += b"\n"
    cut = data.find(b"\n")
    header = data[:cut].decode().split(",")
    if (
        len(set(header)) != len(header)
        or "kind" in header
        or not {"task", "worker", "label"} <= set(header)
        or (kind == "review" and {"shown_label", "suggested_label"} <= set(header))
    ):
        return None
    width = len(header)
    raw = np.frombuffer(data, dtype=np.uint8)
    is_nl = raw == ord("\n")
    seps = np.flatnonzero(is_nl | (raw == ord(",")))
    seps = seps[np.searchsorted(seps, cut, side="right") :]
    if seps.size < width or seps.size % width or not is_nl[seps[width - 1 :: width]].all():
        return None
    if is_nl[seps].sum() != seps.size // width:  # a blank line or a short one
        return None
    starts = np.empty_like(seps)
    starts[0] = cut + 1
    starts[1:] = seps[:-1] + 1
    ends = seps
    spaced = b" " in data or b"\t" in data

    def column(name: str) -> tuple[np.ndarray, np.ndarray]:
        s, e = starts[header.index(name) :: width].copy(), ends[header.index(name) :: width].copy()
        for _ in range(64 if spaced else 0):  # strip spaces and tabs around a field
            lead = ((raw[s] == 32) | (raw[s] == 9)) & (s < e)
            trail = ((raw[e - 1] == 32) | (raw[e - 1] == 9)) & (s < e)
            if not (lead.any() or trail.any()):
                return s, e
            s += lead
            e -= trail
        if spaced:
            return s, s  # absurd padding: refused below, and read row by row
        return s, e

    (ts, te), (ws, we), (ls, le) = column("task"), column("worker"), column("label")
    if (te <= ts).any() or (we <= ws).any():
        return None
    if max(int((te - ts).max()), int((we - ws).max())) > _MAX_FAST_ID:
        return None
    label = _decimal(raw, ls, le)
    if label is None or label.max() >= num_classes:
        return None
    item, first_task = _codes(raw, ts, te)
    worker, first_worker = _codes(raw, ws, we)
    return ParsedVotes(
        item=item,
        worker=worker,
        label=label,
        candidates=None,
        num_workers=first_worker.size,
        spans=(raw, ts[first_task], te[first_task]),
    )


# --------------------------------------------------------------------------- the row reader


def read_votes(
    path: Path, *, num_classes: int, kind: str | None, complementary: bool
) -> ParsedVotes:
    """Parse a long-format votes CSV; every problem is a VoteFileError naming file and line."""
    if not complementary:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise VoteFileError(f"{path}: cannot read ({exc.strerror})") from None
        plain = read_votes_plain(data, num_classes=num_classes, kind=kind)
        del data
        if plain is not None:
            return plain
    with open_csv(path) as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames
        if not header:
            raise VoteFileError(f"{path}: empty file, expected a header task,worker,label")
        missing = [c for c in ("task", "worker", "label") if c not in header]
        if missing:
            raise VoteFileError(
                f"{path}: missing column {missing[0]!r} (header: {','.join(header)}); "
                "expected task,worker,label"
            )
        has_kind = "kind" in header
        review_map = kind == "review" and {"shown_label", "suggested_label"} <= set(header)
        task_pos: dict[str, int] = {}
        worker_pos: dict[str, int] = {}
        items, workers, labels, cands = [], [], [], []
        kinds_seen: set[str] = set()
        for row in reader:
            where = f"{path} line {reader.line_num}"
            if has_kind:
                row_kind = (row.get("kind") or "").strip()
                kinds_seen.add(row_kind)
                if kind is None and len(kinds_seen) > 1:
                    raise VoteFileError(
                        f"{where}: votes of several kinds ({', '.join(sorted(kinds_seen))}); "
                        "choose one with --kind"
                    )
                if kind is not None and row_kind != kind:
                    continue
            if None in row:
                raise VoteFileError(f"{where}: more fields than the header has")
            task, worker = (row["task"] or "").strip(), (row["worker"] or "").strip()
            if not task or not worker:
                raise VoteFileError(f"{where}: empty {'task' if not task else 'worker'}")
            label = _int(row["label"] or "", where, "label")
            if review_map:
                # review answers: given, suggested, both (keeps given), neither (no class)
                if label == REVIEW_NEITHER:
                    continue
                col = "suggested_label" if label == REVIEW_SUGGESTED else "shown_label"
                if not (row[col] or "").strip():
                    continue
                label = _int(row[col], where, col)
            if not 0 <= label < num_classes:
                raise VoteFileError(
                    f"{where}: label {label} outside 0..{num_classes - 1} "
                    f"(--num-classes {num_classes})"
                )
            row_cands: list[int] = []
            if complementary and (row.get("candidates") or "").strip():
                row_cands = [_int(c, where, "candidate") for c in row["candidates"].split()]
                bad = [c for c in row_cands if not 0 <= c < num_classes]
                if bad:
                    raise VoteFileError(f"{where}: candidate {bad[0]} outside 0..{num_classes - 1}")
                if label not in row_cands:
                    raise VoteFileError(
                        f"{where}: label {label} is not among its candidates {row_cands}"
                    )
            items.append(task_pos.setdefault(task, len(task_pos)))
            workers.append(worker_pos.setdefault(worker, len(worker_pos)))
            labels.append(label)
            cands.append(row_cands)
    if not items:
        if has_kind and kind is not None and kind not in kinds_seen:
            raise VoteFileError(
                f"{path}: no votes of kind {kind!r} (kinds in the file: "
                f"{', '.join(sorted(kinds_seen)) or 'none'})"
            )
        raise VoteFileError(f"{path}: no votes (the file has a header and no usable rows)")
    width = max(len(c) for c in cands)
    candidates = None
    if width:
        candidates = np.full((len(cands), width), -1, dtype=np.int64)
        for v, row_cands in enumerate(cands):
            candidates[v, : len(row_cands)] = row_cands
    return ParsedVotes(
        item=np.asarray(items, dtype=np.int64),
        worker=np.asarray(workers, dtype=np.int64),
        label=np.asarray(labels, dtype=np.int64),
        candidates=candidates,
        num_workers=len(worker_pos),
        names=list(task_pos),
    )


# --------------------------------------------------------------------------- other inputs


def check_probabilities(arr: object, n: int, k: int, source: str) -> np.ndarray:
    """(n, k) float64 probabilities: finite, non-negative, rows summing to 1; else ValueError."""
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{source}: predicted probabilities must be a numpy array")
    if arr.ndim != 2 or arr.shape != (n, k):
        raise ValueError(
            f"{source}: predicted probabilities must have shape (N, K) = ({n}, {k}) "
            f"(one row per item in index order, one column per class), got {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{source}: predicted probabilities must be floats, got {arr.dtype}")
    out = arr.astype(np.float64)
    if not np.isfinite(out).all():
        bad = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
        raise ValueError(f"{source}: row {bad} holds NaN or infinity")
    if (out < 0).any():
        bad = int(np.flatnonzero((out < 0).any(axis=1))[0])
        raise ValueError(f"{source}: row {bad} holds a negative probability")
    sums = out.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > _ROW_SUM_ATOL)
    if off.size:
        raise ValueError(
            f"{source}: {off.size} rows do not sum to 1 (row {int(off[0])} sums to "
            f"{float(sums[off[0]]):.6g})"
        )
    return out


def votes_by_row(
    votes: ParsedVotes, path: Path, num_classes: int, source: Path
) -> tuple[ParsedVotes, np.ndarray]:
    """Load ``--pred-probs`` (N, K) and renumber the votes' items by row: each task must be an
    integer 0..N-1, the row of its item. Returns the votes over all N rows, and the array."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise VoteFileError(f"{path}: cannot read as a .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise VoteFileError(f"{path}: expected one N x K .npy array, not an archive of several")
    if arr.ndim != 2:
        raise VoteFileError(f"{path}: expected an N x K array, got shape {arr.shape}")
    if arr.shape[1] != num_classes:
        raise VoteFileError(
            f"{path}: {arr.shape[1]} columns, but --num-classes is {num_classes} (K differs)"
        )
    try:
        probs = check_probabilities(arr, arr.shape[0], num_classes, str(path))
    except ValueError as exc:
        raise VoteFileError(str(exc)) from None
    n = probs.shape[0]
    rows = []
    for task in votes.tasks:
        try:
            row = int(task)
        except ValueError:
            row = -1
        if not 0 <= row < n:
            raise VoteFileError(
                f"{source}: task {task!r} is not a row of {path} (with --pred-probs the task "
                f"column is the 0-based row, an integer 0..{n - 1})"
            )
        rows.append(row)
    item = np.asarray(rows, dtype=np.int64)[votes.item]
    return replace(votes, item=item, names=[str(i) for i in range(n)], spans=None), probs


def read_gold(path: Path, tasks: list[str], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``task,label`` rows of known answers; tasks absent from the votes are skipped."""
    pos = {t: i for i, t in enumerate(tasks)}
    gi, gl = [], []
    with open_csv(path) as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"task", "label"} <= set(reader.fieldnames):
            raise VoteFileError(f"{path}: expected columns task,label")
        for row in reader:
            where = f"{path} line {reader.line_num}"
            label = _int(row["label"] or "", where, "label")
            if not 0 <= label < num_classes:
                raise VoteFileError(f"{where}: label {label} outside 0..{num_classes - 1}")
            task = (row["task"] or "").strip()
            if task in pos:
                gi.append(pos[task])
                gl.append(label)
    return np.asarray(gi, dtype=np.int64), np.asarray(gl, dtype=np.int64)


# --------------------------------------------------------------------------- output


def _ranges(start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start[i], start[i] + length[i])`` for every i."""
    total = int(length.sum())
    offset = np.cumsum(length) - length
    return np.arange(total) - np.repeat(offset - start, length)


def _csv_bytes(votes: ParsedVotes, labels: np.ndarray, confidence: np.ndarray) -> bytes:
    """``task,label,confidence`` rows (CRLF, confidence to 6 decimals) assembled in one buffer
    from the task ids' own bytes."""
    raw, t_start, t_end = votes.spans  # type: ignore[misc]
    t_len = t_end - t_start
    lab = labels.astype(np.int64)
    neg = lab < 0
    mag = np.abs(lab)
    n_dig = np.ones(lab.size, dtype=np.int64)
    for power in range(1, 19):
        n_dig += mag >= 10**power
    l_len = n_dig + neg
    micro = np.rint(np.clip(confidence, 0.0, 1.0) * 1e6).astype(np.int64)
    row_len = t_len + 1 + l_len + 1 + 8 + 2  # task , label , d.dddddd \r\n
    row_start = np.cumsum(row_len) - row_len
    out = np.empty(int(row_len.sum()), dtype=np.uint8)
    out[_ranges(row_start, t_len)] = raw[_ranges(t_start, t_len)]
    pos = row_start + t_len
    out[pos] = ord(",")
    out[pos[neg] + 1] = ord("-")
    label_end = pos + l_len  # the label's last digit
    rest = mag.copy()
    for j in range(int(n_dig.max())):
        live = j < n_dig
        out[(label_end - j)[live]] = ord("0") + (rest[live] % 10)
        rest //= 10
    pos = label_end + 1
    out[pos] = ord(",")
    out[pos + 1] = ord("0") + micro // 1_000_000
    out[pos + 2] = ord(".")
    frac = micro % 1_000_000
    for j in range(6):
        out[pos + 8 - j] = ord("0") + frac % 10
        frac //= 10
    out[pos + 9] = ord("\r")
    out[pos + 10] = ord("\n")
    return out.tobytes()


def write_labels(
    path: Path, votes: ParsedVotes, labels: np.ndarray, probs: np.ndarray, confidence: np.ndarray
) -> None:
    """``task,label,confidence`` CSV, or ``.npz`` with ``tasks``, ``labels``, ``probs``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npz":
        np.savez(
            path,
            tasks=np.asarray(votes.tasks, dtype=str),
            labels=labels.astype(np.int64),
            probs=probs.astype(np.float64),
        )
        return
    header = b"task,label,confidence\r\n"
    if votes.names is None:  # ids straight from the fast reader: never need quoting
        path.write_bytes(header + _csv_bytes(votes, labels, confidence))
        return
    tasks = votes.names
    rows = zip(tasks, labels.tolist(), confidence.tolist(), strict=True)
    with open(path, "w", newline="") as fh:
        joined = "".join(tasks)
        if any(c in joined for c in ',"\r\n'):  # ids that need csv quoting
            w = csv.writer(fh)
            w.writerow(["task", "label", "confidence"])
            w.writerows([task, label, f"{conf:.6f}"] for task, label, conf in rows)
            return
        fh.write(header.decode())
        fh.write("".join([f"{task},{label},{conf:.6f}\r\n" for task, label, conf in rows]))
