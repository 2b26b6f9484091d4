"""An offline stand-in for Prolific's API (only what hits/providers/prolific.py uses) and its
participant side, for development, demos and tests. Served at /prolific-standin/ only where
LOCALTURK_ENABLED is on; its API answers only ``Authorization: Token PROLIFIC_STANDIN_TOKEN``.

Its state lives in this process's memory (one dev server or test process); it is not shared
between processes and is lost on restart. ``PROLIFIC_STANDIN_FAULTS`` (a list of statuses,
e.g. ``[429, 500]``) answers the next API calls with those statuses, one each, for tests.
"""
