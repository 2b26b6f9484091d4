"""Import crowd votes collected elsewhere into a dataset (see annotation.vote_imports)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Dataset, TaskKind
from annotation.vote_imports import FORMATS, VoteImportError, votes_import

from ._progress import ProgressLine


class Command(BaseCommand):
    help = (
        "Import votes: --dataset NAME|ID --kind KIND --format long|mturk-results|turkle|"
        "label-errors [--by-index [--index-base 1]] FILE. All or nothing; importing the same "
        "file twice adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--dataset", required=True, help="dataset name or id")
        parser.add_argument("--kind", required=True, choices=TaskKind.values)
        parser.add_argument("--format", dest="fmt", required=True, choices=FORMATS)
        parser.add_argument(
            "--by-index",
            action="store_true",
            help="tasks (label-errors: ids) are item indexes, not item file names",
        )
        parser.add_argument(
            "--index-base",
            type=int,
            choices=(0, 1),
            default=None,
            help="with --by-index: the number of the first item in the file (default 0, or 1 "
            "when a long file's tasks run exactly 1..N over an N-item dataset)",
        )

    def handle(self, *args, **opts):
        ref = opts["dataset"]
        dataset = Dataset.objects.filter(name=ref).first()
        if dataset is None and ref.isdigit():
            dataset = Dataset.objects.filter(pk=int(ref)).first()
        if dataset is None:
            raise CommandError(f"no dataset named {ref!r}")
        try:
            outcome = votes_import(
                dataset,
                opts["file"],
                kind=opts["kind"],
                fmt=opts["fmt"],
                by_index=opts["by_index"],
                index_base=opts["index_base"],
                progress=ProgressLine(self.stderr, f"importing votes into {dataset.name}"),
            )
        except VoteImportError as exc:
            raise CommandError(f"import refused, nothing was written: {exc}") from None
        for note in outcome.notes:
            self.stdout.write(note)
        self.stdout.write(
            self.style.SUCCESS(
                f"{outcome.written} {opts['kind']} votes written from {outcome.workers} workers "
                f"({outcome.rows} rows, {outcome.votes_read} votes read; skipped "
                f"{outcome.skipped_existing} already imported, {outcome.skipped_repeated} "
                f"repeated, {outcome.skipped_rows} rejected rows)"
            )
        )
