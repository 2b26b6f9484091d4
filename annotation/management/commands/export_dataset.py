from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.exceptions import ExportError
from annotation.exporters import CLIMAGE_LABELS, EXPORT_FORMATS, dataset_export
from annotation.models import Dataset

from ._progress import ProgressLine


class Command(BaseCommand):
    help = "Export a dataset's labels: climage pickle, label-errors folder, votes CSV, worker ids."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--format", dest="fmt", required=True, choices=EXPORT_FORMATS)
        parser.add_argument("--output", type=Path, required=True)
        parser.add_argument(
            "--prefix", help="label-errors: the release's file prefix (default: the dataset name)"
        )
        parser.add_argument(
            "--pred-probs",
            type=Path,
            help="label-errors: N x K out-of-sample probabilities (.npy); default: the latest "
            "finished curation run's, else a cross-validated run made now",
        )
        parser.add_argument("--hash", default="hmac", choices=["hmac", "sha1"])
        parser.add_argument(
            "--labels",
            default="auto",
            choices=CLIMAGE_LABELS,
            help="climage ord_labels: auto (aggregated class label, else the current label, "
            "else the given one), given, or aggregated",
        )

    def handle(self, *args, **opts):
        try:
            dataset = Dataset.objects.get(name=opts["name"])
        except Dataset.DoesNotExist:
            raise CommandError(f"no dataset named {opts['name']!r}") from None
        extra = {}
        if opts["fmt"] == "label-errors":
            extra["prefix"] = opts["prefix"]
            extra["pred_probs"] = opts["pred_probs"]
            extra["say"] = lambda message: self.stderr.write(message)
        if opts["fmt"] == "climage":
            extra["labels"] = opts["labels"]
        if opts["fmt"] == "worker-ids":
            extra["hash"] = opts["hash"]
        try:
            out = dataset_export(
                dataset,
                opts["fmt"],
                opts["output"],
                progress=ProgressLine(self.stderr, f"exporting {dataset.name}"),
                **extra,
            )
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"wrote {out}"))
