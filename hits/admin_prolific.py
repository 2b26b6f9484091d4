"""The HitBatch admin's Prolific parts: pause / resume / stop the study, and the submissions
only one side has, as the last sync recorded them."""

from __future__ import annotations

from django.contrib import messages
from django.utils.html import format_html, format_html_join

from .exceptions import HitsError
from .models import HitBatch, Provider
from .services import prolific_study_action

DONE = {"pause": "paused", "resume": "resumed", "stop": "stopped"}


def prolific_admin_study_action(model_admin, request, queryset, action: str) -> None:
    """Run ``action`` on each selected batch's study; other providers are refused by name."""
    for batch in queryset:
        if batch.provider != Provider.PROLIFIC:
            model_admin.message_user(
                request,
                f"{batch.name}: not {DONE[action]}: only a Prolific batch has a study to "
                f"{action} (this one is on {batch.get_provider_display()}).",
                messages.ERROR,
            )
            continue
        try:
            prolific_study_action(batch, action)
        except HitsError as exc:
            model_admin.message_user(
                request, f"{batch.name}: not {DONE[action]}: {exc}", messages.ERROR
            )
        else:
            model_admin.message_user(
                request, f"{batch.name}: study {DONE[action]} at Prolific.", messages.SUCCESS
            )


def prolific_mismatch_html(batch: HitBatch | None) -> str:
    """What the last sync found on one side only: Prolific's submissions we do not have, and
    our assignments Prolific does not list (flagged "missing at provider")."""
    if batch is None or batch.pk is None or batch.provider != Provider.PROLIFIC:
        return "—"
    progress = batch.progress or {}
    if "prolific_only_at_prolific" not in progress and "prolific_only_here" not in progress:
        return "Not synced yet."
    there = progress.get("prolific_only_at_prolific") or []
    here = progress.get("prolific_only_here") or []
    if not there and not here:
        return "Every submission matches an assignment."
    return format_html(
        "<div>Submissions at Prolific we do not have ({}): {}</div>"
        "<div>Our assignments missing at Prolific ({}): {}</div>",
        len(there),
        format_html_join(", ", "<code>{}</code>", ((s,) for s in there)) or "none",
        len(here),
        format_html_join(", ", "<code>{}</code>", ((s,) for s in here)) or "none",
    )
