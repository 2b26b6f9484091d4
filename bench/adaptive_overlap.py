"""Adaptive overlap replayed on a real crowd: accuracy against votes used.

Usage:
    .venv/bin/python bench/adaptive_overlap.py                      # dog crowd, default policy
    .venv/bin/python bench/adaptive_overlap.py --method one_coin --target 0.99 --min-votes 2

The dog crowd (``../shared/fixtures/crowd-truth/dog-answers.csv``, 807 items, ten real votes
each; expert truth in ``dog-truth.csv``) is replayed in file order, which is each item's arrival
order. The policy (:func:`annotation.aggregation.adaptive.items_needing_votes`) asks for votes in
rounds: after each round the votes revealed so far are aggregated, the posterior picks the items
that get one more vote (at most ``--round`` per round), and each request reveals that item's
next real vote. The table prints, for each fixed overlap k = 1..10 (the first k votes of every
item), its accuracy and the adaptive policy's accuracy at the same number of votes, then where
the policy stops by itself (every item at the target or at ten votes). Accuracy is against the
experts' truth, unresolved items counting as wrong; "stop" marks budgets the policy never
reached because it had stopped (its accuracy there is the one it stopped with). Prints figures
only; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CROWD = ROOT.parent / "shared" / "fixtures" / "crowd-truth"
NUM_CLASSES = 4


def load_dog() -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, int]:
    """Per item, its workers and labels in arrival order; the truth (N,); the worker count."""
    items: dict[str, int] = {}
    workers: dict[str, int] = {}
    per_worker: list[list[int]] = []
    per_label: list[list[int]] = []
    with open(CROWD / "dog-answers.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            i = items.setdefault(row["task"], len(items))
            if i == len(per_worker):
                per_worker.append([])
                per_label.append([])
            per_worker[i].append(workers.setdefault(row["worker"], len(workers)))
            per_label[i].append(int(row["label"]))
    truth = np.full(len(items), -1, dtype=np.int64)
    with open(CROWD / "dog-truth.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["task"] in items:
                truth[items[row["task"]]] = int(row["truth"])
    return (
        [np.asarray(w, dtype=np.int64) for w in per_worker],
        [np.asarray(lb, dtype=np.int64) for lb in per_label],
        truth,
        len(workers),
    )


class Replay:
    """The votes revealed so far: the first ``counts[i]`` of item i's real votes."""

    def __init__(self, workers, labels, num_workers: int, method: str) -> None:
        from annotation.aggregation import VoteTable, aggregate_by_name

        self._table, self._aggregate = VoteTable, aggregate_by_name
        self.workers, self.labels, self.num_workers, self.method = (
            workers,
            labels,
            num_workers,
            method,
        )
        self.available = np.array([w.size for w in workers])
        self.counts = np.zeros(len(workers), dtype=np.int64)

    def aggregate(self):
        n = self.counts.size
        item = np.repeat(np.arange(n), self.counts)
        worker = np.concatenate([w[:c] for w, c in zip(self.workers, self.counts, strict=True)])
        label = np.concatenate([lb[:c] for lb, c in zip(self.labels, self.counts, strict=True)])
        table = self._table.from_arrays(
            item, worker, label, num_items=n, num_workers=self.num_workers
        )
        return self._aggregate(table, self.method, num_classes=NUM_CLASSES)


def accuracy(labels: np.ndarray, truth: np.ndarray) -> float:
    return float((labels == truth).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="dawid_skene", help="posterior method")
    parser.add_argument("--min-votes", type=int, default=1)
    parser.add_argument("--target", type=float, default=0.999)
    parser.add_argument("--round", type=int, default=10, help="most votes asked per round")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from annotation.aggregation.adaptive import items_needing_votes

    method = args.method
    workers, labels, truth, m = load_dog()
    n = len(workers)
    max_votes = int(max(w.size for w in workers))

    fixed = []
    for k in range(1, max_votes + 1):
        replay = Replay(workers, labels, m, method)
        replay.counts = np.minimum(replay.available, k)
        fixed.append((int(replay.counts.sum()), accuracy(replay.aggregate().labels, truth)))
    all_votes, all_acc = fixed[-1]

    start = time.perf_counter()
    replay = Replay(workers, labels, m, method)
    checkpoints = [b for b, _ in fixed]
    at_budget: dict[int, float] = {}
    rounds = 0
    result = None
    while True:
        result = replay.aggregate() if replay.counts.any() else None
        used = int(replay.counts.sum())
        if result is not None:
            for b in checkpoints:
                if b == used:
                    at_budget[b] = accuracy(result.labels, truth)
        posteriors = (
            result.probs if result is not None else np.full((n, NUM_CLASSES), 1 / NUM_CLASSES)
        )
        nxt = [b for b in checkpoints if b > used]
        room = min(args.round, nxt[0] - used) if nxt else args.round
        chosen = items_needing_votes(
            posteriors,
            replay.counts,
            min_votes=args.min_votes,
            max_votes=max_votes,
            target=args.target,
            budget=room,
        )
        chosen = chosen[replay.counts[chosen] < replay.available[chosen]]
        if chosen.size == 0:
            break
        replay.counts[chosen] += 1
        rounds += 1
    seconds = time.perf_counter() - start
    stop_votes = int(replay.counts.sum())
    stop_acc = accuracy(result.labels, truth) if result is not None else float("nan")

    print(f"# Adaptive overlap replay on the dog crowd ({time.strftime('%Y-%m-%d')})")
    print(
        f"{n} items, {all_votes} votes ({max_votes} per item), {NUM_CLASSES} classes; posterior: "
        f"{method}; policy: min {args.min_votes} votes, max {max_votes}, target "
        f"{args.target}, at most {args.round} votes per round"
    )
    head = f"{'votes used':>10} {'share':>6} {'fixed k':>7} {'fixed acc':>9} {'adaptive acc':>12}"
    print(head)
    print("-" * len(head))
    for k, (budget, acc) in enumerate(fixed, start=1):
        adaptive = at_budget.get(budget)
        shown = f"{adaptive:12.4f}" if adaptive is not None else f"{stop_acc:.4f} stop".rjust(12)
        print(f"{budget:10d} {budget / all_votes:6.1%} {k:7d} {acc:9.4f} {shown}")
    print(
        f"adaptive stops by itself at {stop_votes} votes ({stop_votes / all_votes:.1%} of all) "
        f"with accuracy {stop_acc:.4f}; all {all_votes} votes give {all_acc:.4f} "
        f"(difference {stop_acc - all_acc:+.4f}); {rounds} rounds in {seconds:.1f} s"
    )
    reach = [b for b, _ in fixed if b in at_budget and at_budget[b] >= all_acc - 0.005]
    if stop_acc >= all_acc - 0.005:
        reach.append(stop_votes)
    if reach:
        first = min(reach)
        print(
            f"within 0.005 of all votes from {first} votes ({first / all_votes:.1%}) on "
            "(fixed budgets and the stopping point)"
        )


if __name__ == "__main__":
    main()
