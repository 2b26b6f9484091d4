from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.class_presets import CLASS_PRESETS
from annotation.exceptions import DatasetImportError
from annotation.models import Split
from annotation.services import dataset_import_from_args
from annotation.staging import staging_cleanup

from ._progress import ProgressLine


class Command(BaseCommand):
    help = (
        "Import an image-classification dataset. Formats: climage FILE.pkl --classes SPEC; npy "
        "--images X.npy [--labels Y.npy] --classes SPEC; folder DIR (one sub-folder per class) "
        "or folder --csv FILE (path,label rows); label-errors DIR --name N (a release folder "
        "attached to dataset N, which holds its test set's images); --demo (scikit-learn's "
        "digits). --clean-staging removes what imports that were killed half-way left behind "
        "(every import also does this first)."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", type=Path, help="pickle file or image folder")
        parser.add_argument("--name", help="dataset name (letters, digits, - and _)")
        parser.add_argument(
            "--format", dest="fmt", choices=["climage", "npy", "folder", "label-errors", "demo"]
        )
        parser.add_argument(
            "--prefix", help="label-errors: the release's file prefix (default: the only one there)"
        )
        parser.add_argument("--images", type=Path)
        parser.add_argument("--labels", type=Path)
        parser.add_argument(
            "--classes",
            metavar="SPEC",
            help="class names: a text file with one name per line, or a preset ("
            + ", ".join(CLASS_PRESETS)
            + "); climage and npy need it (a CLImage pickle does not carry its class names)",
        )
        parser.add_argument("--csv", type=Path)
        parser.add_argument("--description", default="")
        parser.add_argument("--split", default="", choices=[c for c, _ in Split.choices])
        parser.add_argument("--demo", action="store_true", help="import the bundled demo dataset")
        parser.add_argument(
            "--if-missing", action="store_true", help="do nothing when the name already exists"
        )
        parser.add_argument(
            "--clean-staging",
            action="store_true",
            help="remove the staging folders of imports that did not finish, then stop",
        )

    def handle(self, *args, **opts):
        if opts["clean_staging"]:
            n = staging_cleanup()
            self.stdout.write(f"removed {n} staging folder(s) left by unfinished imports")
            return
        fmt = "demo" if opts["demo"] else opts["fmt"]
        name = opts["name"] or ("digits-demo" if fmt == "demo" else None)
        if not fmt:
            raise CommandError("give --format climage|npy|folder, or --demo")
        if not name:
            raise CommandError("give --name NAME")
        if fmt == "label-errors":
            self._label_errors(opts, name)
            return
        if opts["if_missing"]:
            from annotation.models import Dataset

            if Dataset.objects.filter(name=name).exists():
                self.stdout.write(f"dataset {name} already exists; nothing to do")
                return
        try:
            dataset = dataset_import_from_args(
                name=name,
                fmt=fmt,
                file=opts["path"],
                images=opts["images"],
                labels=opts["labels"],
                classes=opts["classes"],
                csv=opts["csv"],
                description=opts["description"],
                split=opts["split"],
                progress=ProgressLine(self.stderr, f"importing {name}"),
            )
        except DatasetImportError as exc:
            raise CommandError(f"import refused, nothing was written: {exc}") from None
        n = dataset.items.count()
        self.stdout.write(
            self.style.SUCCESS(f"imported {name}: {n} items, {dataset.num_classes} classes")
        )

    def _label_errors(self, opts, name: str) -> None:
        """A label-errors release folder attached to the dataset of its test set's images."""
        from annotation.label_errors import label_errors_import

        if opts["path"] is None:
            raise CommandError("give the release folder: import_dataset DIR --format label-errors")
        try:
            res = label_errors_import(
                opts["path"],
                name=name,
                prefix=opts["prefix"],
                progress=lambda message: self.stderr.write(message),
            )
        except DatasetImportError as exc:
            raise CommandError(f"import refused, nothing was written: {exc}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"attached {res.prefix} to {name}: {res.labels_set} labels filled in, "
                f"{res.votes} review votes on {res.reviewed_items} items"
            )
        )
