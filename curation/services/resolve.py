"""Resolving issues from review votes: k of n agreeing answers settle an issue, a confirmed error
corrects the item's label, and every verdict is kept as an AggregatedLabel."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotation.aggregation import (
    REVIEW_ANSWERS,
    VERIFY_ANSWERS,
    VoteTable,
    consensus,
    consensus_method_name,
)
from annotation.models import AggregatedLabel, Item, LabelChange, TaskKind, Vote
from hits.models import Assignment, HitBatch

from ..models import CurationRun, LabelIssue
from ..selectors import runs_awaiting_resolution
from .review import DEFAULT_RULES, RULES

logger = logging.getLogger(__name__)
R = LabelIssue.Resolution


@dataclass(frozen=True)
class ResolveResult:
    corrected: int = 0
    errors: int = 0
    kept: int = 0
    no_consensus: int = 0
    waiting: int = 0

    @property
    def resolved(self) -> int:
        return self.corrected + self.errors + self.kept + self.no_consensus


def _rule(run: CurationRun, kind: str, k: int | None, n: int | None, batch) -> tuple[int, int]:
    """(k, n) for a review batch: explicit arguments, else run.params["review_rule"] (e.g.
    "5of5"), else 3 of 5 for review and 2 of 3 for verify, n never above the batch's votes."""
    rule = (run.params or {}).get("review_rule")
    if k is None and rule:
        if rule not in RULES:
            raise ValueError(f"review_rule must be one of {sorted(RULES)}, got {rule!r}")
        k, n = RULES[rule]
    dk, dn = DEFAULT_RULES[kind]
    n = n or batch.assignments_per_item or dn
    k = k or min(dk, n)
    if not 1 <= k <= n:
        raise ValueError(f"the rule needs 1 <= k <= n, got k={k}, n={n}")
    return k, n


def _verdict(kind: str, answer: int, issue: LabelIssue) -> tuple[str, int | None, str]:
    """(resolution, resolved label, outcome name) for the agreed answer (-1 = none).

    Review: "suggested" confirms the error and the suggested label becomes the label; "given"
    and "both" keep the label (the given label fits; "both" is an ambiguous image, not an error,
    as in the label-errors study); "neither" confirms the error but no label was agreed, so the
    label stays and the issue reads "error". Verify: "wrong" is such an error, "correct" keeps
    the label, "unsure" settles nothing.
    """
    if answer < 0:
        return R.NO_CONSENSUS, None, "no_consensus"
    if kind == TaskKind.REVIEW:
        outcome = REVIEW_ANSWERS[answer]
        if outcome == "suggested":
            return R.CONFIRMED, issue.suggested_label, outcome
        if outcome == "neither":
            return R.ERROR, None, outcome
        return R.KEPT, issue.current_label, outcome
    outcome = VERIFY_ANSWERS[answer]
    if outcome == "wrong":
        return R.ERROR, None, outcome
    if outcome == "correct":
        return R.KEPT, issue.current_label, outcome
    return R.NO_CONSENSUS, None, outcome


def curation_run_resolve(
    run: CurationRun, *, k: int | None = None, n: int | None = None, final: bool = False
) -> ResolveResult:
    """Resolve the run's issues in review whose items have all their votes (k of n agree).

    A confirmed error changes the item's current label, with a LabelChange from
    ``curation:run-<id>``; every verdict writes an AggregatedLabel (kind review or verify, method
    ``consensus_<k>of<n>``) so exports follow it. Items still short of n votes wait, unless
    ``final`` (or the batch has expired), when they resolve as no consensus. Idempotent.
    """
    totals: dict[str, int] = defaultdict(int)
    in_review = run.issues.filter(resolution=R.IN_REVIEW, review_batch__isnull=False)
    for batch in HitBatch.objects.filter(pk__in=in_review.values("review_batch")):
        kind = batch.kind
        answers = REVIEW_ANSWERS if kind == TaskKind.REVIEW else VERIFY_ANSWERS
        kk, nn = _rule(run, kind, k, n, batch)
        closing = final or batch.status == HitBatch.Status.EXPIRED
        issues = list(in_review.filter(review_batch=batch).select_related("item"))
        pos = {issue.item_id: i for i, issue in enumerate(issues)}
        votes = (
            Vote.objects.counted()
            .filter(item_id__in=list(pos), kind=kind, is_gold=False, assignment__hit__batch=batch)
            .exclude(assignment__status=Assignment.Status.REJECTED)
            .filter(Q(answer__gte=0) & Q(answer__lt=len(answers)))
            .order_by("id")
            .values_list("item_id", "worker_id", "answer")
        )
        per_item: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for item_id, worker_id, answer in votes:
            if len(per_item[item_id]) < nn:  # reposts may bring more than n; the first n count
                per_item[item_id].append((worker_id, answer))
        rows = [(pos[i], w, a) for i, vs in per_item.items() for w, a in vs]
        labels = np.full(len(issues), -1, dtype=np.int64)
        counts = np.zeros((len(issues), len(answers)), dtype=np.int64)
        if rows:
            arr = np.asarray(rows, dtype=np.int64)
            workers = np.unique(arr[:, 1], return_inverse=True)[1]
            table = VoteTable.from_arrays(arr[:, 0], workers, arr[:, 2], num_items=len(issues))
            labels = consensus(table, num_classes=len(answers), k=kk, n=nn).labels
            np.add.at(counts, (arr[:, 0], arr[:, 2]), 1)
        # The rule's one name (consensus() names its result so too), also for a batch without
        # votes, whose items resolve as no consensus when it closes.
        method = consensus_method_name(kk, nn)
        with transaction.atomic():
            for i, issue in enumerate(issues):
                total = int(counts[i].sum())
                if total < nn and not closing:
                    totals["waiting"] += 1
                    continue
                resolution, resolved, outcome = _verdict(kind, int(labels[i]), issue)
                _apply(run, issue, kind, method, resolution, resolved, outcome, counts[i], answers)
                totals[str(resolution)] += 1
    return ResolveResult(
        corrected=totals[R.CONFIRMED],
        errors=totals[R.ERROR],
        kept=totals[R.KEPT],
        no_consensus=totals[R.NO_CONSENSUS],
        waiting=totals["waiting"],
    )


def _apply(run, issue, kind, method, resolution, resolved, outcome, counts, answers) -> None:
    total = int(counts.sum())
    agreeing = int(counts.max()) if total else 0
    issue.resolution = resolution
    issue.resolved_label = resolved
    issue.review_counts = {a: int(c) for a, c in zip(answers, counts.tolist(), strict=True)}
    issue.resolved_at = timezone.now()
    issue.save(update_fields=["resolution", "resolved_label", "review_counts", "resolved_at"])
    item = Item.objects.select_for_update().get(pk=issue.item_id)
    if resolution == R.CONFIRMED and item.label != resolved:
        names = run.dataset.class_names
        LabelChange.objects.create(
            item=item,
            old_label=item.label,
            new_label=resolved,
            reason=(
                f"{kind} {method}: {agreeing} of {total} workers chose the suggested label "
                f"{names[resolved]!r} over {names[issue.current_label]!r}"
                if issue.current_label is not None
                else f"{kind} {method}: {agreeing} of {total} workers chose {names[resolved]!r}"
            ),
            source=run.source,
        )
        item.label = resolved
        item.save(update_fields=["label"])
    AggregatedLabel.objects.update_or_create(
        item=item,
        kind=kind,
        method=method,
        defaults={
            "label": -1 if resolved is None else int(resolved),
            "confidence": agreeing / total if total else 0.0,
            "probs": None,
            "num_votes": total,
        },
    )


def curation_runs_resolve() -> dict[int, int]:
    """The periodic job: resolve every run with issues in review; {run id: issues resolved}."""
    out = {}
    for run in runs_awaiting_resolution():
        try:
            out[run.pk] = curation_run_resolve(run).resolved
        except ValueError as exc:
            logger.error("resolving curation run %s: %s", run.pk, exc)
    return out
