"""Find what to label in an unlabeled pool: ``manage.py retrieve ACTION TARGET``.

rank POOL makes a run and ranks the pool per class; round RUN sends the next verification round
to the crowd; fold RUN folds its votes back; review RUN / review-fold RUN do the same for the
images two classes claim; status RUN prints per-class precision; export RUN writes the kept
images as a labeled dataset in every format.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.management.commands._progress import ProgressLine
from annotation.models import Dataset
from curation.exceptions import RetrievalRefused
from curation.models import RetrievalRun
from curation.services.retrieval import (
    retrieval_run_create,
    retrieval_run_enqueue,
    retrieval_run_rank,
)
from curation.services.retrieval_output import retrieval_run_export, retrieval_run_summary
from curation.services.retrieval_review import retrieval_review_fold, retrieval_review_launch
from curation.services.retrieval_rounds import retrieval_round_fold, retrieval_round_launch

ACTIONS = ("rank", "round", "fold", "review", "review-fold", "status", "export")


def _pairs(values: list[str], flag: str) -> dict[str, list[str]]:
    """``CLASS=VALUE`` options grouped by class."""
    out: dict[str, list[str]] = {}
    for v in values:
        cls, sep, rest = v.partition("=")
        if not sep or not cls.strip() or not rest.strip():
            raise CommandError(f"{flag} {v!r}: expected CLASS=VALUE")
        out.setdefault(cls.strip(), []).append(rest.strip())
    return out


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("action", choices=ACTIONS)
        parser.add_argument("target", help="rank: the pool dataset's name; else the run id")
        parser.add_argument("--backend", default="offline", choices=RetrievalRun.Backend.values)
        parser.add_argument("--embeddings", default="", help="npy: image embeddings N x D")
        parser.add_argument("--text-embeddings", default="", help="npy: text embeddings K x D")
        parser.add_argument("--bucket", default="", help="only the items of this bucket")
        parser.add_argument("--bucket-field", default="bucket", choices=["bucket", "year"])
        parser.add_argument(
            "--template",
            action="append",
            default=[],
            help='prompt template, e.g. "a photo of a {}."',
        )
        parser.add_argument("--negative", action="append", default=[], help="CLASS=negative prompt")
        parser.add_argument(
            "--example", action="append", default=[], help="CLASS=item name (query by example)"
        )
        parser.add_argument("--target-precision", type=float, default=0.99)
        parser.add_argument("--confidence", type=float, default=0.95)
        parser.add_argument("--stretch", type=int, default=1000)
        parser.add_argument("--sample", type=int, default=300)
        parser.add_argument("--max-rounds", type=int, default=20)
        parser.add_argument(
            "--seed",
            type=int,
            default=None,
            help="rank: draws the rounds' samples (default random)",
        )
        parser.add_argument("--budget", default=None, help="USD for all rounds together")
        parser.add_argument("--reward", default="0.05", help="USD per verify HIT")
        parser.add_argument("--gold-rate", type=float, default=0.0)
        parser.add_argument("--review-margin", type=float, default=0.02)
        parser.add_argument("--provider", default="market", choices=["market", "mturk"])
        parser.add_argument("--force", action="store_true", help="fold: count missing as wrong")
        parser.add_argument(
            "--background", action="store_true", help="rank: on the curation Celery queue"
        )
        parser.add_argument("--output", type=Path, help="export: the folder to write")
        parser.add_argument("--name", help="export: the labeled dataset's name")

    def handle(self, *args, **opts):
        try:
            getattr(self, f"_{opts['action'].replace('-', '_')}")(opts)
        except RetrievalRefused as exc:
            raise CommandError(str(exc)) from None

    def _run(self, opts) -> RetrievalRun:
        try:
            return RetrievalRun.objects.select_related("dataset").get(pk=int(opts["target"]))
        except (ValueError, RetrievalRun.DoesNotExist):
            raise CommandError(f"no retrieval run {opts['target']!r}") from None

    def _rank(self, opts) -> None:
        try:
            dataset = Dataset.objects.get(name=opts["target"])
        except Dataset.DoesNotExist:
            raise CommandError(f"no dataset named {opts['target']!r}") from None
        money = {}
        for key in ("budget", "reward"):
            if opts[key] is not None:
                try:
                    money[key] = Decimal(opts[key])
                except InvalidOperation:
                    raise CommandError(f"--{key} {opts[key]!r} is not an amount") from None
        run = retrieval_run_create(
            dataset,
            backend=opts["backend"],
            embeddings_path=opts["embeddings"],
            text_path=opts["text_embeddings"],
            bucket=opts["bucket"],
            bucket_field=opts["bucket_field"],
            templates=opts["template"],
            negatives=_pairs(opts["negative"], "--negative"),
            examples=_pairs(opts["example"], "--example"),
            target=opts["target_precision"],
            confidence=opts["confidence"],
            stretch=opts["stretch"],
            sample=opts["sample"],
            max_rounds=opts["max_rounds"],
            **({} if opts["seed"] is None else {"seed": opts["seed"]}),
            gold_rate=opts["gold_rate"],
            review_margin=opts["review_margin"],
            **money,
        )
        if opts["background"]:
            retrieval_run_enqueue(run)
            self.stdout.write(f"retrieval run {run.pk} queued for ranking")
            return
        try:
            retrieval_run_rank(run, progress=ProgressLine(self.stderr, "embedding"))
        except RetrievalRefused:
            run.delete()
            raise
        self.stdout.write(self.style.SUCCESS(f"retrieval run {run.pk}: {run.message}"))
        self._print(run)

    def _round(self, opts) -> None:
        run = self._run(opts)
        rnd = retrieval_round_launch(run, provider=opts["provider"])
        if rnd is None:
            self.stdout.write(f"run {run.pk} is done: {run.message or 'no class left to verify'}")
        else:
            n = rnd.batch.items.count()
            self.stdout.write(
                self.style.SUCCESS(
                    f"round {rnd.number}: batch {rnd.batch.name} asks about {n} images"
                )
            )

    def _fold(self, opts) -> None:
        run = self._run(opts)
        rnd = retrieval_round_fold(run, force=opts["force"])
        self.stdout.write(self.style.SUCCESS(f"folded round {rnd.number}"))
        self._print(run)

    def _review(self, opts) -> None:
        batch = retrieval_review_launch(self._run(opts))
        n = batch.items.count()
        self.stdout.write(self.style.SUCCESS(f"review batch {batch.name} asks about {n} images"))

    def _review_fold(self, opts) -> None:
        run = self._run(opts)
        out = retrieval_review_fold(run, force=opts["force"])
        self.stdout.write(
            self.style.SUCCESS(f"review folded: {out['kept']} kept, {out['dropped']} dropped")
        )
        self._print(run)

    def _status(self, opts) -> None:
        self._print(self._run(opts))

    def _export(self, opts) -> None:
        if opts["output"] is None:
            raise CommandError("export needs --output FOLDER")
        run = self._run(opts)
        dataset, folder = retrieval_run_export(run, opts["output"], name=opts["name"])
        self.stdout.write(
            self.style.SUCCESS(f"wrote {dataset.name} ({dataset.items.count()} images) to {folder}")
        )
        self.stdout.write(json.dumps(json.loads(dataset.description)["classes"]))

    def _print(self, run: RetrievalRun) -> None:
        s = retrieval_run_summary(run)
        self.stdout.write(
            f"run {run.pk} ({run.get_status_display()}): target {run.target:.3f} at "
            f"{run.confidence:.0%} confidence; rounds {s.rounds}, votes {s.votes}, "
            f"cost ${s.spent}, kept {s.kept}, for review {s.review}"
        )
        self.stdout.write("class        listed  verified  kept  precision  lower bound  stopped")
        for c in s.classes:
            self.stdout.write(
                f"{c.name[:12]:<12} {c.listed:>6}  {c.verified:>8}  {c.kept:>4}  "
                f"{c.estimate:>9.3f}  {c.lower:>11.3f}  {c.stopped or '-'}"
            )
