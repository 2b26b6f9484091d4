"""The researcher's side in the admin: batches with a launch preview, watch panels, review
actions. Every action calls one service; the ones that reach a provider run as Celery tasks,
enqueued once the request's transaction commits."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import models
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from .admin_assignments import render_action_form
from .admin_forms import HitBatchAdminForm, hit_batch_items_html
from .admin_loop import LOOP_FIELDS, loop_state_html, stop_auto_loop
from .admin_plan import plan_html
from .admin_prolific import prolific_admin_study_action, prolific_mismatch_html
from .effort import hit_batch_effort
from .exceptions import HitsError
from .models import HitBatch
from .selectors import hit_batch_stats
from .services import (
    LIVE_PERMISSION,
    enqueue_on_commit,
    hit_batch_launch,
    hit_batch_preview,
    hit_batch_repost,
    hit_batch_worker_lists,
)
from .templatetags.hits_admin import badge

# What a researcher sets on a draft batch, by admin section; read-only once launched.
CONFIG_SECTIONS = (
    ("Task", ("name", "dataset", "kind", "images_per_task", "params", "item_selection", "items")),
    ("Where", ("provider", "environment")),
    ("What workers see", ("title", "description", "keywords")),
    (
        "Money and size",
        (
            "reward",
            "assignments_per_item",
            "items_per_hit",
            "gold_rate",
            "bonus_budget",
            "budget_cap",
        ),
    ),
    ("Time", ("lifetime_seconds", "assignment_duration_seconds", "auto_approval_delay_seconds")),
    ("Qualifications", ("qualification_preset", "qualification_params")),
)
CONFIG_FIELDS = tuple(field for _, fields in CONFIG_SECTIONS for field in fields)
# A launched batch shows its items as a count and a few ids, never one line per item.
ITEMS_SHOWN = {"items": "chosen_items", "images_per_task": "images_per_task_shown"}


def bar(done: int | float, total: int | float, label: str, color: str = "#1976d2") -> str:
    pct = 0 if not total else min(100, round(100 * float(done) / float(total)))
    return format_html(
        '<div style="margin:.3em 0"><div style="font-size:.9em">{}</div>'
        '<div style="background:#e0e0e0;border-radius:.3em;height:1.1em;width:100%;max-width:32em">'
        '<div style="background:{};height:100%;width:{}%;border-radius:.3em"></div></div></div>',
        label,
        color,
        pct,
    )


class WorkerListsForm(forms.Form):
    allow = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 50}),
        help_text="Worker ids, one a line: only these may work on the batch.",
    )
    block = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 50}),
        help_text="Worker ids, one a line: these may not. Ids are hashed; none is stored.",
    )


@admin.register(HitBatch)
class HitBatchAdmin(admin.ModelAdmin):
    list_display = ["env", "name", "dataset", "kind", "status", "votes_bar", "created_at"]
    list_filter = ["environment", "provider", "status", "kind"]
    search_fields = ["name", "title"]
    list_select_related = ["dataset"]
    form = HitBatchAdminForm
    # Items are typed as ids: a picker would list (and query) every item of every dataset.
    raw_id_fields = ["items"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = [
        "uid",
        "status",
        "watch",
        "job",
        "error",
        "hit_type_id",
        "launched_at",
        "launched_by",
        "market_link",
        "only_one_side",
        "loop_state",
        "plan",
    ]
    actions = [
        "preview_and_launch",
        "sync_now",
        "approve_all_submitted",
        "auto_review",
        "extend_one_day",
        "expire_now",
        "repost_unfinished",
        "clean_up_orphans",
        "set_worker_lists",
        "prolific_pause",
        "prolific_resume",
        "prolific_stop",
        stop_auto_loop,
    ]
    fieldsets = [
        (None, {"fields": ["status", "watch", "job", "error", "market_link", "only_one_side"]}),
        *((name, {"fields": list(fields)}) for name, fields in CONFIG_SECTIONS),
        ("Plan", {"fields": ["plan"]}),
        ("Review rules", {"fields": ["review_rules"]}),
        ("Automatic loop and adaptive overlap", {"fields": list(LOOP_FIELDS)}),
        (
            "Built-in marketplace",
            {
                "fields": [
                    "invite_code",
                    "worker_id_param",
                    "max_hits_per_worker",
                    "completion_code",
                    "completion_redirect_url",
                ]
            },
        ),
        ("Provider", {"fields": ["uid", "hit_type_id", "launched_at", "launched_by"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None and obj.status != HitBatch.Status.DRAFT:
            # Launched: the provider holds these now; change them by re-posting.
            fields += [ITEMS_SHOWN.get(f, f) for f in CONFIG_FIELDS]
        return fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or obj.status == HitBatch.Status.DRAFT:
            return fieldsets
        return [
            (name, {**opts, "fields": [ITEMS_SHOWN.get(f, f) for f in opts["fields"]]})
            for name, opts in fieldsets
        ]

    @admin.display(description="plan")
    def plan(self, obj):
        return plan_html(obj)

    @admin.display(description="images per task")
    def images_per_task_shown(self, obj):
        return (obj.params or {}).get("group_size", "—") if obj.kind == "select" else "—"

    @admin.display(description="items")
    def chosen_items(self, obj):
        return hit_batch_items_html(obj)

    @admin.display(description="env", ordering="environment")
    def env(self, obj):
        return badge(obj.environment)

    @admin.display(description="votes")
    def votes_bar(self, obj):
        if obj.status == HitBatch.Status.DRAFT:
            return "—"
        s = hit_batch_stats(obj)
        return bar(s.votes_collected, s.votes_needed, f"{s.votes_collected} / {s.votes_needed}")

    @admin.display(description="progress")
    def watch(self, obj):
        if obj is None or obj.pk is None or obj.status == HitBatch.Status.DRAFT:
            return "Not launched yet: use “Preview and launch”."
        s = hit_batch_stats(obj)
        a = s.assignments_by_status
        median = "—" if s.median_seconds is None else f"{s.median_seconds:.0f} s"
        parts = [
            bar(s.published, s.hits, f"HITs published: {s.published} / {s.hits}", "#546e7a"),
            bar(
                s.assignments_done,
                s.assignments_wanted,
                f"Assignments done: {s.assignments_done} / {s.assignments_wanted} "
                f"(accepted {a.get('Accepted', 0)}, submitted {a.get('Submitted', 0)}, "
                f"approved {a.get('Approved', 0)}, rejected {a.get('Rejected', 0)}, "
                f"returned or abandoned {a.get('Returned', 0) + a.get('Abandoned', 0)})",
            ),
            bar(
                s.votes_collected,
                s.votes_needed,
                f"Votes collected: {s.votes_collected} / {s.votes_needed}",
                "#2e7d32",
            ),
            bar(
                s.spent,
                s.projected,
                f"Spent ${s.spent:.2f} of a projected ${s.projected:.2f}",
                "#b71c1c",
            ),
        ]
        hits = ", ".join(f"{k}: {v}" for k, v in sorted(s.hits_by_status.items()))
        return format_html(
            "{}<div>HITs by status: {}</div><div>Median time per assignment: {}</div>",
            format_html_join("", "{}", ((p,) for p in parts)),
            hits or "—",
            median,
        )

    @admin.display(description="background job")
    def job(self, obj):
        p = obj.progress or {}
        if not p:
            return "—"
        total = p.get("total") or 0
        label = f"{p.get('job', 'job')}: {p.get('done', 0)} / {total}"
        if p.get("finished"):
            label += " (finished)"
        if p.get("error"):
            label += f" — {p['error']}"
        return format_html(
            "{}<div>updated {}</div>", bar(p.get("done", 0), total, label), p.get("updated_at", "")
        )

    @admin.display(description="worker link")
    def market_link(self, obj):
        if obj is None or obj.pk is None or obj.provider != "market":
            return "—"
        url = settings.SITE_URL.rstrip("/") + reverse("market:batch", args=[obj.uid])
        if obj.worker_id_param:
            url += f"?{obj.worker_id_param}={{{{%{obj.worker_id_param}%}}}}"
        if obj.worker_id_param:  # a template the recruiting platform fills in: not a link
            return format_html("<code>{}</code>", url)
        return format_html('<a href="{0}" target="_blank" rel="noopener"><code>{0}</code></a>', url)

    @admin.display(description="automatic loop")
    def loop_state(self, obj):
        return loop_state_html(obj)

    @admin.display(description="only one side has")
    def only_one_side(self, obj):
        return prolific_mismatch_html(obj)

    # --- launch ---------------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<int:pk>/launch/",
                self.admin_site.admin_view(self.launch_view),
                name="hits_hitbatch_launch",
            ),
            *super().get_urls(),
        ]

    def launch_view(self, request, pk: int):
        """The launch preview; a POST launches (live needs the box ticked and the permission)."""
        batch = get_object_or_404(HitBatch, pk=pk)
        if not self.has_change_permission(request, batch):
            return redirect("admin:hits_hitbatch_changelist")
        live = batch.environment == "live"
        can_live = request.user.has_perm(LIVE_PERMISSION)
        if request.method == "POST":
            try:
                hit_batch_launch(
                    batch, user=request.user, confirm_live=request.POST.get("confirm_live") == "yes"
                )
            except HitsError as exc:
                self.message_user(request, f"Not launched: {exc}", messages.ERROR)
            else:
                self.message_user(
                    request, f"Launching {batch.name}: HITs are being published.", messages.SUCCESS
                )
                return redirect("admin:hits_hitbatch_change", batch.pk)
        preview, effort, error = None, None, ""
        try:
            preview = hit_batch_preview(batch)
            effort = hit_batch_effort(batch)
        except (HitsError, ValueError) as exc:
            error = str(exc)
        return render(
            request,
            "admin/hits/hitbatch/launch.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "original": batch,
                "batch": batch,
                "preview": preview,
                "effort": effort,
                "error": error,
                "live": live,
                "can_live": can_live,
                "title": f"Launch {batch.name}",
            },
        )

    @admin.action(description="Preview and launch (one batch)")
    def preview_and_launch(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Pick exactly one batch to launch.", messages.WARNING)
            return None
        return redirect("admin:hits_hitbatch_launch", queryset.get().pk)

    # --- background actions ----------------------------------------------------------------

    def _enqueue(self, request, queryset, task: str, what: str, *args) -> None:
        for batch in queryset:
            enqueue_on_commit(task, batch.pk, *args)
        self.message_user(request, f"{what}: queued for {queryset.count()} batch(es).")

    @admin.action(description="Sync assignments from the provider now")
    def sync_now(self, request, queryset):
        self._enqueue(request, queryset, "hit_batch_sync_task", "Sync")

    @admin.action(description="Approve all submitted assignments")
    def approve_all_submitted(self, request, queryset):
        self._enqueue(request, queryset, "hit_batch_approve_submitted_task", "Approve all")

    @admin.action(description="Apply the review rules (auto-approve / reject / soft-block)")
    def auto_review(self, request, queryset):
        self._enqueue(request, queryset, "hit_batch_auto_review_task", "Review rules")

    @admin.action(description="Extend by one day")
    def extend_one_day(self, request, queryset):
        self._enqueue(request, queryset, "hit_batch_extend_task", "Extend", 24 * 3600)

    @admin.action(description="Expire now")
    def expire_now(self, request, queryset):
        self._enqueue(request, queryset, "hit_batch_expire_task", "Expire")

    @admin.action(description="Clean up orphaned HITs at the provider")
    def clean_up_orphans(self, request, queryset):
        pairs = set(queryset.values_list("provider", "environment"))
        for provider, env in pairs:
            enqueue_on_commit("hits_orphans_cleanup_task", provider, env)
        self.message_user(request, f"Clean-up queued for {len(pairs)} environment(s).")

    @admin.action(description="Set allow / block lists of workers (drafts)")
    def set_worker_lists(self, request, queryset):
        form = WorkerListsForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            for batch in queryset:
                try:
                    counts = hit_batch_worker_lists(
                        batch,
                        allow=form.cleaned_data["allow"].splitlines(),
                        block=form.cleaned_data["block"].splitlines(),
                    )
                except HitsError as exc:
                    self.message_user(request, f"{batch.name}: {exc}", messages.ERROR)
                else:
                    self.message_user(request, f"{batch.name}: lists set {counts}.")
            return None
        return render_action_form(self, request, queryset, form, "Set worker lists")

    @admin.action(description="Pause the study (Prolific)")
    def prolific_pause(self, request, queryset):
        prolific_admin_study_action(self, request, queryset, "pause")

    @admin.action(description="Resume the study (Prolific)")
    def prolific_resume(self, request, queryset):
        prolific_admin_study_action(self, request, queryset, "resume")

    @admin.action(description="Stop the study (Prolific)")
    def prolific_stop(self, request, queryset):
        prolific_admin_study_action(self, request, queryset, "stop")

    @admin.action(description="Re-post the unfinished items as a new draft batch")
    def repost_unfinished(self, request, queryset):
        for batch in queryset:
            try:
                new = hit_batch_repost(batch)
            except HitsError as exc:
                self.message_user(request, f"{batch.name}: {exc}", messages.ERROR)
                continue
            if new is None:
                self.message_user(request, f"{batch.name}: every item has its votes.")
            else:
                url = reverse("admin:hits_hitbatch_change", args=[new.pk])
                self.message_user(
                    request,
                    format_html(
                        '{}: <a href="{}">{}</a> drafted with {} items.',
                        batch.name,
                        url,
                        new.name,
                        new.items.count(),
                    ),
                )
