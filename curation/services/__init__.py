"""Writes for the curation app: run the engine over a dataset (runs, inputs), send its issues to
review (review), and fold the review votes back into the items' labels (resolve); the automatic
loop chains those stages after a batch's votes (loop).

Importing this package never imports torch: the engine is imported inside the functions that run
on the curation worker (curation_run_execute), so the web process can call everything else.
Services start background work by task name and never import the tasks module.
"""

from .loop import (
    auto_loop_aggregate,
    auto_loop_batch_completed,
    auto_loop_curate,
    auto_loop_resolve,
    auto_loop_review,
)
from .resolve import ResolveResult, curation_run_resolve, curation_runs_resolve
from .review import DEFAULT_RULES, RULES, curation_run_review_batch
from .runs import (
    DEFAULT_DETECTORS,
    DETECTORS,
    curation_run_create,
    curation_run_enqueue,
    curation_run_execute,
)

__all__ = [
    "DEFAULT_DETECTORS",
    "DEFAULT_RULES",
    "DETECTORS",
    "RULES",
    "ResolveResult",
    "auto_loop_aggregate",
    "auto_loop_batch_completed",
    "auto_loop_curate",
    "auto_loop_resolve",
    "auto_loop_review",
    "curation_run_create",
    "curation_run_enqueue",
    "curation_run_execute",
    "curation_run_resolve",
    "curation_run_review_batch",
    "curation_runs_resolve",
]
