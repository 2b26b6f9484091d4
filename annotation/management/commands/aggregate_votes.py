"""Aggregate crowd votes from a CSV file, or a dataset's votes in the database.

File mode (``annotation.aggregate_files``, which ``manage.py`` also runs without setting up the
site) reads crowd-kit's long format (``task,worker,label``) and writes ``task,label,confidence``
CSV or ``.npz``. Without ``--method``, class votes use
:data:`annotation.aggregation.DEFAULT_METHOD`. Both modes report Fleiss' kappa and
Krippendorff's alpha of the class votes.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotation import aggregate_files
from annotation.aggregated_labels import labels_apply_aggregated
from annotation.aggregation_services import (
    METHODS_BY_KIND,
    AggregationOptions,
    aggregation_run_start,
    dataset_aggregate,
)
from annotation.exceptions import AggregationError
from annotation.models import Dataset

KINDS = aggregate_files.KINDS


class Command(BaseCommand):
    help = aggregate_files.HELP

    def add_arguments(self, parser):
        aggregate_files.add_arguments(parser)

    def handle(self, *args, **opts):
        if opts["dataset"]:
            return self.handle_dataset(opts)
        aggregate_files.COMMAND.run_in_django(self, opts)

    def handle_dataset(self, opts) -> None:
        if opts["pred_probs"] is not None:
            raise CommandError(
                "--pred-probs is for file mode; with --dataset, crowd_model takes the "
                "probabilities of the dataset's latest curation run"
            )
        try:
            dataset = Dataset.objects.get(name=opts["dataset"])
        except Dataset.DoesNotExist:
            raise CommandError(f"no dataset named {opts['dataset']!r}") from None
        if not opts["kind"]:
            raise CommandError(f"--kind is required with --dataset: one of {', '.join(KINDS)}")
        options = AggregationOptions(
            consensus_k=opts["k"],
            consensus_n=opts["n"],
            select_threshold=opts["threshold"],
            min_gold_votes=opts["min_gold_votes"],
            seed=opts["seed"],
        )
        try:
            if opts["background"] and opts["apply"]:
                raise CommandError("--apply runs in the foreground only; drop --background")
            if opts["background"]:
                run = aggregation_run_start(
                    dataset, kind=opts["kind"], methods=opts["method"], options=options
                )
                self.stdout.write(self.style.SUCCESS(f"queued aggregation run {run.pk}"))
                return
            outcome = dataset_aggregate(
                dataset, kind=opts["kind"], methods=opts["method"], options=options
            )
        except AggregationError as exc:
            known = ", ".join(METHODS_BY_KIND[opts["kind"]])
            raise CommandError(f"{exc} (methods for {opts['kind']}: {known})") from None
        for method, written in outcome.labels_written.items():
            self.stdout.write(
                f"{method}: {written} labels, {outcome.resolved[method]} resolved "
                f"({outcome.num_votes} votes)"
            )
        for note in outcome.notes:
            self.stdout.write(note)
        from annotation.dashboards import dataset_agreement

        agreement = dataset_agreement(dataset, opts["kind"])
        if agreement is not None:
            self.stdout.write(f"agreement: {agreement.describe()}")
        if opts["apply"]:
            try:
                changed = labels_apply_aggregated(dataset, kind=opts["kind"], method=opts["apply"])
            except AggregationError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"{changed} item labels set from {opts['apply']}")
