"""The automatic loop on a batch's admin page: each stage (state, times, result, reason), the
loop's state, and the action that stops it."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from .models import HitBatch
from .services import hit_batch_loop_stop

# The admin section of a batch's loop and adaptive-overlap settings.
LOOP_FIELDS = (
    "loop_state",
    "auto_loop",
    "loop_curation",
    "min_votes",
    "max_votes",
    "confidence_target",
)


STAGE_COLUMNS = ("stage", "state", "started", "finished", "result", "reason", "launched batch")


def _result_text(result: dict) -> str:
    return "; ".join(f"{k}: {'—' if v is None else v}" for k, v in sorted(result.items())) or "—"


def loop_stages_html(batch: HitBatch) -> str:
    """The loop's stages as a table: state, times, result, reason and the batch launched."""
    rows = [
        (
            stage.get_stage_display(),
            stage.get_state_display(),
            stage.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            stage.finished_at.strftime("%Y-%m-%d %H:%M:%S") if stage.finished_at else "—",
            _result_text(stage.result or {}),
            stage.reason or "—",
            format_html(
                '<a href="../../{}/change/">batch {}</a>',
                stage.launched_batch_id,
                stage.launched_batch_id,
            )
            if stage.launched_batch_id
            else "—",
        )
        for stage in batch.loop_stages.order_by("started_at", "id")
    ]
    if not rows:
        return ""
    head = format_html_join("", "<th>{}</th>", ((c,) for c in STAGE_COLUMNS))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((v,) for v in r)),) for r in rows)
    )
    return format_html('<table class="loop-stages"><tr>{}</tr>{}</table>', head, body)


def loop_state_html(batch: HitBatch | None) -> str:
    """One line on the loop: off, stopped (when), or where it stands."""
    if batch is None or batch.pk is None or not batch.auto_loop:
        return "off"
    if batch.loop_stopped_at is not None:
        return format_html(
            "stopped by the researcher at {}{}", batch.loop_stopped_at, loop_stages_html(batch)
        )
    last = batch.loop_stages.order_by("-started_at", "-id").first()
    if last is None:
        return "on: waits for the batch's votes to be complete"
    return format_html(
        "on: {} {}{}",
        last.get_stage_display().lower(),
        last.get_state_display().lower(),
        loop_stages_html(batch),
    )


@admin.action(description="Stop the automatic loop (no further stage starts)")
def stop_auto_loop(model_admin, request, queryset) -> None:
    stopped = sum(hit_batch_loop_stop(batch) for batch in queryset.filter(auto_loop=True))
    model_admin.message_user(
        request, f"Stopped the automatic loop of {stopped} batch(es).", messages.SUCCESS
    )
