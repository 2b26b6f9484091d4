"""Verification rounds of a retrieval run: each round sends a sample of the next stretch of every
class still going to the crowd as one verify HIT batch (with gold), and folding it back decides,
per class, whether the stretch is kept (its precision bound reaches the target) or the class
stops."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal

from django.db import transaction

from annotation.aggregation import ANSWER_CORRECT
from annotation.models import Item, TaskKind, Vote
from curation.engine.verification import (
    ClassProgress,
    StretchResult,
    next_sample,
    record_stretch,
)
from hits.exceptions import LaunchRefused
from hits.models import Environment, HitBatch, ItemSelection, Provider
from hits.selectors import hit_batch_stats
from hits.services import hit_batch_launch

from ..exceptions import RetrievalRefused
from ..models import RetrievalCandidate, RetrievalRound, RetrievalRun
from .retrieval import _policy
from .review import BATCH_TEXT

C = RetrievalCandidate.State
S = RetrievalRun.Status


def class_progress(run: RetrievalRun, k: int) -> ClassProgress:
    """Class ``k``'s stored progress as the engine's ClassProgress."""
    raw = run.progress.get(str(k), {})
    return ClassProgress(
        position=int(raw.get("position", 0)),
        stretches=[StretchResult(**s) for s in raw.get("stretches", [])],
        stopped=str(raw.get("stopped", "")),
    )


def _store(run: RetrievalRun, k: int, progress: ClassProgress) -> None:
    run.progress[str(k)] = asdict(progress)


def retrieval_spent(run: RetrievalRun) -> Decimal:
    """What the run's verify batches have cost so far, fees included."""
    batches = [rnd.batch for rnd in run.rounds.select_related("batch")]
    if run.review_batch is not None:
        batches.append(run.review_batch)
    return sum((hit_batch_stats(b).spent for b in batches), Decimal("0.00"))


def _stop_all(run: RetrievalRun, reason: str) -> None:
    for k in range(run.dataset.num_classes):
        progress = class_progress(run, k)
        if not progress.stopped:
            progress.stopped = reason
            _store(run, k, progress)
    run.status = S.DONE


def retrieval_batch_create(
    run: RetrievalRun,
    kind: str,
    candidates: list[RetrievalCandidate],
    *,
    state: str,
    name: str,
    provider: str = Provider.MARKET,
    params: dict | None = None,
    assignments_per_item: int,
    items_per_hit: int,
    budget_cap: Decimal | None = None,
) -> HitBatch:
    """A draft HIT batch of the run's pool over these candidates' items, with the run's reward
    and gold. Each item shows its candidate class as its label (what the worker verifies or
    weighs), and the candidates move to ``state``. Call inside a transaction."""
    items = [Item(pk=c.item_id, label=c.label) for c in candidates]
    Item.objects.bulk_update(items, ["label"], batch_size=1000)
    RetrievalCandidate.objects.filter(pk__in=[c.pk for c in candidates]).update(state=state)
    title, description = BATCH_TEXT[kind]
    batch = HitBatch.objects.create(
        name=name,
        dataset=run.dataset,
        kind=kind,
        params=params or {},
        item_selection=ItemSelection.EXPLICIT,
        provider=provider,
        environment=Environment.MARKET if provider == Provider.MARKET else Environment.SANDBOX,
        title=title,
        description=description,
        reward=run.reward,
        assignments_per_item=assignments_per_item,
        items_per_hit=items_per_hit,
        gold_rate=run.gold_rate,
        budget_cap=budget_cap,
    )
    batch.items.set([c.item_id for c in candidates])
    return batch


def retrieval_round_launch(
    run: RetrievalRun, *, provider: str = Provider.MARKET, user=None
) -> RetrievalRound | None:
    """Send the next round out: the samples of every class still going, as one verify batch.

    Returns None (and the run is done) when no class is left, or the rounds or the budget are
    used up; the sampled items show their class as the label to verify.
    """
    if run.status != S.RANKED:
        raise RetrievalRefused(
            f"run {run.pk} is {run.get_status_display()}: a round can start only once it is "
            "ranked and the previous round is folded"
        )
    if provider not in (Provider.MARKET, Provider.MTURK):
        raise RetrievalRefused(f"provider must be market or mturk, got {provider!r}")
    policy = _policy(run)
    number = run.rounds.count() + 1
    if number > policy.max_rounds:
        _stop_all(run, "rounds")
        run.save()
        return None
    chosen: list[RetrievalCandidate] = []
    for k in range(run.dataset.num_classes):
        progress = class_progress(run, k)
        listed = run.candidates.on_list(k)
        ranks = next_sample(listed.count(), progress, policy, seed=run.seed * 7919 + k)
        chosen += list(listed.filter(rank__in=[int(r) for r in ranks]))
    if not chosen:
        _stop_all(run, "end")
        run.save()
        return None
    spent = retrieval_spent(run)
    with transaction.atomic():
        batch = retrieval_batch_create(
            run,
            TaskKind.VERIFY,
            chosen,
            state=C.SAMPLED,
            name=f"retrieval run {run.pk} round {number}",
            provider=provider,
            assignments_per_item=run.assignments_per_item,
            items_per_hit=run.items_per_hit,
            budget_cap=None if run.budget is None else max(run.budget - spent, Decimal("0")),
        )
        rnd = RetrievalRound.objects.create(run=run, number=number, batch=batch)
        run.status = S.VERIFYING
        run.save()
    if provider == Provider.MARKET:
        try:
            hit_batch_launch(batch, user=user)
        except LaunchRefused as exc:
            _undo_round(run, rnd, chosen)
            if "budget" in str(exc):
                _stop_all(run, "budget")
                run.message = f"stopped: round {number} would pass the budget ({exc})"
                run.save()
                return None
            raise RetrievalRefused(str(exc)) from None
    return rnd


def _undo_round(run: RetrievalRun, rnd: RetrievalRound, chosen: list[RetrievalCandidate]) -> None:
    with transaction.atomic():
        RetrievalCandidate.objects.filter(pk__in=[c.pk for c in chosen]).update(state=C.LISTED)
        Item.objects.filter(pk__in=[c.item_id for c in chosen]).update(label=None)
        batch = rnd.batch
        rnd.delete()
        batch.delete()
        run.status = S.RANKED
        run.save()


def _verdicts(rnd: RetrievalRound, sampled: list[RetrievalCandidate]) -> dict[int, dict]:
    """Counted verify answers per candidate (not gold), about the class it was shown with."""
    counts: dict[int, dict] = {c.pk: {} for c in sampled}
    by_item = {c.item_id: c for c in sampled}
    votes = Vote.objects.counted().filter(
        assignment__hit__batch=rnd.batch, kind=TaskKind.VERIFY, is_gold=False
    )
    for item_id, shown, answer in votes.values_list("item_id", "shown_label", "answer"):
        cand = by_item.get(item_id)
        if cand is None or shown != cand.label:
            continue
        key = str(answer)
        counts[cand.pk][key] = counts[cand.pk].get(key, 0) + 1
    return counts


def retrieval_round_fold(run: RetrievalRun, *, force: bool = False) -> RetrievalRound:
    """Fold the open round's votes back: a sampled image is verified correct when most of its
    votes say correct (unsure counts against); each class keeps its stretch while the bound on
    the stretch's precision reaches the target, else it stops there.

    Refused while votes are missing, unless ``force`` (then missing votes count as not correct).
    """
    rnd = run.rounds.filter(folded=False).order_by("number").first()
    if rnd is None or run.status != S.VERIFYING:
        raise RetrievalRefused(f"run {run.pk} has no round out for verification")
    policy = _policy(run)
    sampled = list(run.candidates.filter(state=C.SAMPLED))
    counts = _verdicts(rnd, sampled)
    short = [c for c in sampled if sum(counts[c.pk].values()) < run.assignments_per_item]
    if short and not force:
        raise RetrievalRefused(
            f"round {rnd.number}: {len(short)} of {len(sampled)} images still lack votes; wait "
            "for the workers (or fold with force, counting missing votes as not correct)"
        )
    with transaction.atomic():
        for k in range(run.dataset.num_classes):
            mine = sorted((c for c in sampled if c.label == k), key=lambda c: c.rank)
            if not mine:
                continue
            correct = {
                c.pk: 2 * counts[c.pk].get(str(ANSWER_CORRECT), 0) > run.assignments_per_item
                for c in mine
            }
            progress = class_progress(run, k)
            listed = run.candidates.on_list(k).count()
            result = record_stretch(listed, progress, policy, [correct[c.pk] for c in mine])
            _store(run, k, progress)
            for c in mine:
                c.votes = counts[c.pk]
                c.state = C.CORRECT if correct[c.pk] else C.WRONG
            RetrievalCandidate.objects.bulk_update(mine, ["votes", "state"])
            wrong_items = [c.item_id for c in mine if not correct[c.pk]]
            Item.objects.filter(pk__in=wrong_items).update(label=None)
            stretch = run.candidates.filter(
                label=k, state=C.LISTED, rank__gte=result.start, rank__lt=result.stop
            )
            if result.accepted:
                Item.objects.filter(pk__in=stretch.values("item_id")).update(label=k)
                stretch.update(state=C.KEPT)
            else:
                run.candidates.filter(label=k, state=C.LISTED).update(state=C.LEFT)
        rnd.folded = True
        rnd.save(update_fields=["folded"])
        going = any(not class_progress(run, k).stopped for k in range(run.dataset.num_classes))
        run.status = S.RANKED if going else S.DONE
        run.save()
    return rnd
