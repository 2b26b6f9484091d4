"""The k-of-n consensus rule is stored under one name, ``consensus_<k>of<n>`` (was also
``consensus_<k>_of_<n>``, e.g. ``consensus_3_of_5`` -> ``consensus_3of5``, ``consensus_3_of_any``
-> ``consensus_3ofany``).

Rewrites ``AggregatedLabel.method`` and the method names in ``AggregationRun.methods`` and
``AggregationRun.message``. Where an item already has a label of the same kind under the new name
(curation wrote that form), the newer of the two rows is kept and the other deleted.

Reverse: rows of kind ``review`` go back to ``consensus_<k>_of_<n>``. Only review votes were ever
aggregated under the old form; rows of other kinds (curation's verify resolutions) have always
used ``consensus_<k>of<n>`` and are left as they are.
"""

import re

from django.db import migrations

OLD = re.compile(r"\bconsensus_(\d+)_of_(\d+|any)\b")
NEW = re.compile(r"\bconsensus_(\d+)of(\d+|any)\b")
_CHUNK = 1000


def _to_new(text: str) -> str:
    return OLD.sub(r"consensus_\1of\2", text)


def _to_old(text: str) -> str:
    return NEW.sub(r"consensus_\1_of_\2", text)


def _rename_labels(label_model, pattern, convert, kinds) -> None:
    labels = label_model.objects.order_by()
    if kinds is not None:
        labels = labels.filter(kind__in=kinds)
    names = set(labels.filter(method__startswith="consensus_").values_list("method", flat=True))
    for old in sorted(n for n in names if pattern.fullmatch(n)):
        new = convert(old)
        source = labels.filter(method=old)
        twins = {
            (item_id, kind): (pk, created_at)
            for pk, item_id, kind, created_at in labels.filter(
                method=new, item_id__in=source.values("item_id")
            ).values_list("pk", "item_id", "kind", "created_at")
        }
        drop = []
        for pk, item_id, kind, created_at in source.values_list(
            "pk", "item_id", "kind", "created_at"
        ).iterator(chunk_size=_CHUNK):
            twin = twins.get((item_id, kind))
            if twin is not None:
                drop.append(twin[0] if created_at >= twin[1] else pk)
        for start in range(0, len(drop), _CHUNK):
            label_model.objects.filter(pk__in=drop[start : start + _CHUNK]).delete()
        source.update(method=new)


def _rename_runs(run_model, convert, kinds) -> None:
    runs = run_model.objects.order_by()
    if kinds is not None:
        runs = runs.filter(kind__in=kinds)
    changed = []
    for run in runs.only("pk", "methods", "message").iterator(chunk_size=_CHUNK):
        methods = [convert(m) if isinstance(m, str) else m for m in run.methods or []]
        message = convert(run.message)
        if methods != (run.methods or []) or message != run.message:
            run.methods, run.message = methods, message
            changed.append(run)
    run_model.objects.bulk_update(changed, ["methods", "message"], batch_size=_CHUNK)


def forward(apps, schema_editor):
    _rename_labels(apps.get_model("annotation", "AggregatedLabel"), OLD, _to_new, None)
    _rename_runs(apps.get_model("annotation", "AggregationRun"), _to_new, None)


def backward(apps, schema_editor):
    _rename_labels(apps.get_model("annotation", "AggregatedLabel"), NEW, _to_old, ["review"])
    _rename_runs(apps.get_model("annotation", "AggregationRun"), _to_old, ["review"])


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0003_aggregationrun"),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]
