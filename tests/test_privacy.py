"""No raw worker id reaches the database, the logs or an export."""

import io
import logging

import pytest
from django.core.management import call_command

from annotation.exporters import dataset_export
from annotation.models import Vote
from annotation.services import dataset_import_from_args, worker_get_or_create

pytestmark = pytest.mark.django_db
RAW_IDS = ["A3RAWWORKERID0001", "A3RAWWORKERID0002"]


def test_raw_worker_ids_never_stored_logged_or_exported(make_climage, tmp_path, caplog, settings):
    settings.WORKER_ID_KEEP_SHA1 = True
    caplog.set_level(logging.DEBUG)
    path, _ = make_climage(n=4, k=4, size=8)
    ds = dataset_import_from_args(
        name="priv", fmt="climage", file=path, classes=path.with_suffix(".txt")
    )
    for raw in RAW_IDS:
        w = worker_get_or_create("mturk", raw)
        for item in ds.items.all():
            Vote.objects.create(item=item, worker=w, kind="verify", answer=0, shown_label=0)

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    outputs = [dump.getvalue(), caplog.text]
    for fmt, name in [("votes-csv", "v.csv"), ("worker-ids", "w.txt"), ("label-errors", "le")]:
        out = dataset_export(ds, fmt, tmp_path / name)
        files = [out] if out.is_file() else [f for f in out.rglob("*") if f.is_file()]
        outputs += [f.read_bytes().decode("latin-1") for f in files]
    assert Vote.objects.count() == 8 + 4 * 3
    for raw in RAW_IDS:
        for text in outputs:
            assert raw not in text and raw.lower() not in text
