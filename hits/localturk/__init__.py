"""An offline MTurk: the requester API on MTurk's wire protocol and a worker site, for
development, demos and tests (boto3 is pointed at ``/localturk/``; simulated workers take HITs at
``/localturk/worker/``).

Its requester API answers only calls signed under ``LOCALTURK_ACCESS_KEY_ID`` (and, where set,
``LOCALTURK_SECRET_ACCESS_KEY``), but its worker site lets anyone act as any simulated worker, so
it is installed and routed only when ``LOCALTURK_ENABLED`` is on: by default in development, demo
and test, never in production (where switching it on makes ``manage.py check --deploy`` warn).
"""
