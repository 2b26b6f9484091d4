"""The crowd marketplace side: batches, HITs, assignments, and everything a worker touches.

Owns HitBatch / Hit / Assignment, the task pages and their submissions (``task_views``,
``submissions``, ``task_tokens``), the providers behind one interface (``providers/``: ``mturk``
is the only code that imports boto3, ``market`` is the built-in marketplace) and the services
that write the rows (``services/``: launch, sync, review, lifecycle, market). ``localturk`` is
an offline MTurk stand-in, installed only where ``LOCALTURK_ENABLED`` is on.

It may import ``annotation``; it never imports ``curation``.
"""
