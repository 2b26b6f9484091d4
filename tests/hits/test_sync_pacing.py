"""Sync asks MTurk about at most HITS_SYNC_MAX_PER_RUN HITs a run, the longest unsynced first,
so a batch of thousands of HITs is not throttled; the next runs take the rest."""

import pytest

from hits.localturk.models import CallLog
from hits.services import hit_batch_launch, hit_batch_sync


@pytest.mark.django_db(transaction=True)
def test_each_run_takes_the_longest_unsynced_hits(localturk, make_dataset, make_batch, settings):
    settings.HITS_SYNC_MAX_PER_RUN = 2
    batch = make_batch(make_dataset(n=50), items_per_hit=10, assignments_per_item=1)
    hit_batch_launch(batch)
    batch.refresh_from_db()
    asked = []
    for _ in range(3):
        before = dict(batch.hits.values_list("number", "synced_at"))
        CallLog.objects.all().delete()
        result = hit_batch_sync(batch)
        after = dict(batch.hits.values_list("number", "synced_at"))
        asked.append(sorted(n for n in after if after[n] != before[n]))
        assert result.hits == 2
        assert CallLog.objects.filter(operation="GetHIT").count() == 2
    assert asked == [[1, 2], [3, 4], [1, 5]], "never-synced first, then the longest ago"
