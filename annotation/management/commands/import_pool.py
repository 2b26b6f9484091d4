from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.exceptions import DatasetImportError
from annotation.pool_imports import POOL_SOURCES, pool_buckets, pool_import

from ._progress import ProgressLine


class Command(BaseCommand):
    help = (
        "Import an unlabeled pool to find the given classes in: a flat image folder, an images "
        ".npy (N x H x W x 3 uint8) or a CSV with a path column; metadata per image "
        "(timestamp, bucket, text) from the CSV's own columns or --metadata FILE.csv (name,...)."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="folder, .npy or .csv")
        parser.add_argument("--name", required=True, help="dataset name (letters, digits, - _)")
        parser.add_argument("--source", required=True, choices=POOL_SOURCES)
        parser.add_argument(
            "--classes", required=True, help="file of class names to find, or a preset name"
        )
        parser.add_argument("--metadata", type=Path, help="CSV name,timestamp,bucket,text")
        parser.add_argument("--description", default="")

    def handle(self, *args, **opts):
        try:
            dataset = pool_import(
                name=opts["name"],
                source=opts["source"],
                path=opts["path"],
                classes=opts["classes"],
                metadata=opts["metadata"],
                description=opts["description"],
                progress=ProgressLine(self.stderr, f"importing {opts['name']}"),
            )
        except DatasetImportError as exc:
            raise CommandError(f"import refused, nothing was written: {exc}") from None
        buckets = pool_buckets(dataset)
        shown = ", ".join(f"{k or '(none)'}: {v}" for k, v in buckets.items())
        self.stdout.write(
            self.style.SUCCESS(
                f"imported pool {dataset.name}: {dataset.items.count()} unlabeled images, "
                f"{dataset.num_classes} classes to find; buckets {shown}"
            )
        )
