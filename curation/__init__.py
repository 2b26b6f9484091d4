"""The curation app: finds likely label errors and loops them back to the crowd.

It owns the numeric engine (``curation.engine``, free of Django), curation runs over a dataset,
the label issues they flag, and the loop back to review: review batches (linked to their run by
ReviewBatch), resolving issues from the review votes, and correcting the items' labels.

Curation sits on top: it may import ``annotation`` and ``hits``, and neither imports it. They
reach it through hooks it registers when it loads (see CurationConfig.ready).
"""
