"""The admin of the batch's parts: HITs, assignments (approve, reject, bonus, block), bonuses,
exclusions and notices; and the intermediate page of an action that asks for input."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.shortcuts import render

from .models import Assignment, Bonus, Hit, WorkerExclusion, WorkerNotice
from .selectors import assignment_gold_accuracy
from .services import enqueue_on_commit
from .templatetags.hits_admin import badge


def render_action_form(model_admin, request, queryset, form, title: str):
    """The intermediate page of an action that asks for a message, an amount or a list."""
    return render(
        request,
        "admin/hits/action_form.html",
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": title,
            "form": form,
            "queryset": queryset,
            "action": request.POST.get("action"),
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        },
    )


@admin.register(Hit)
class HitAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "env",
        "batch",
        "status",
        "provider_hit_id",
        "max_assignments",
        "expires_at",
    ]
    list_filter = ["batch__environment", "status", "batch"]
    search_fields = ["provider_hit_id"]
    readonly_fields = [f.name for f in Hit._meta.fields]

    @admin.display(description="env", ordering="batch__environment")
    def env(self, obj):
        return badge(obj.batch.environment)

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("batch")


class RejectForm(forms.Form):
    message = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 70}),
        initial="Sorry: your answers on {batch} (HIT {hit}) did not meet the quality bar.",
        help_text="Workers see this. Placeholders: {batch}, {hit}.",
    )


class BonusForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=8, decimal_places=2)
    reason = forms.CharField(initial="Thank you for careful work.")


class ReasonForm(forms.Form):
    reason = forms.CharField(initial="Answers did not meet the quality bar.")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = [
        "provider_assignment_id",
        "env",
        "batch",
        "hit_number",
        "worker",
        "status",
        "submitted_at",
        "seconds",
        "gold",
        "confirmed",
        "provider_missing",
        "review_note",
    ]
    list_filter = [
        "status",
        "confirmed",
        "provider_missing",
        "hit__batch__environment",
        "hit__batch",
    ]
    search_fields = ["provider_assignment_id"]
    readonly_fields = [f.name for f in Assignment._meta.fields]
    actions = ["approve", "reject", "bonus", "block_worker", "soft_block_worker"]

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("hit__batch", "worker")

    @admin.display(description="env", ordering="hit__batch__environment")
    def env(self, obj):
        return badge(obj.hit.batch.environment)

    @admin.display(description="batch", ordering="hit__batch")
    def batch(self, obj):
        return obj.hit.batch.name

    @admin.display(description="HIT")
    def hit_number(self, obj):
        return obj.hit.number

    @admin.display(description="time")
    def seconds(self, obj):
        if obj.accepted_at and obj.submitted_at:
            return f"{(obj.submitted_at - obj.accepted_at).total_seconds():.0f} s"
        return "—"

    @admin.display(description="gold")
    def gold(self, obj):
        acc = assignment_gold_accuracy(obj)
        return "—" if acc is None else f"{acc:.0%}"

    def _form_action(self, request, queryset, form_class, title: str, run) -> object:
        """An action that asks for a message (or amount) on an intermediate page first."""
        if "apply" in request.POST:
            form = form_class(request.POST)
            if form.is_valid():
                n = run(list(queryset.values_list("pk", flat=True)), form.cleaned_data)
                self.message_user(request, f"{title}: queued for {n} assignment(s).")
                return None
        else:
            form = form_class()
        return render_action_form(self, request, queryset, form, title)

    @admin.action(description="Approve selected")
    def approve(self, request, queryset):
        n = 0
        # Unconfirmed work waits for a sync to find it at the provider before anyone pays it.
        for a in queryset.filter(status=Assignment.Status.SUBMITTED, confirmed=True):
            enqueue_on_commit("assignment_approve_task", a.pk)
            n += 1
        self.message_user(request, f"Approval queued for {n} submitted, confirmed assignment(s).")

    @admin.action(description="Reject selected (with a message)")
    def reject(self, request, queryset):
        def run(ids, data):
            enqueue_on_commit("assignments_reject_task", ids, data["message"])
            return len(ids)

        return self._form_action(
            request, queryset.filter(status="Submitted"), RejectForm, "Reject", run
        )

    def _each(self, request, queryset, form_class, title: str, task: str, *fields: str):
        """Ask for the form's fields, then queue ``task`` for every selected assignment."""

        def run(ids, data):
            for pk in ids:
                enqueue_on_commit(task, pk, *(str(data[f]) for f in fields))
            return len(ids)

        return self._form_action(request, queryset, form_class, title, run)

    @admin.action(description="Pay a bonus")
    def bonus(self, request, queryset):
        return self._each(
            request, queryset, BonusForm, "Bonus", "assignment_bonus_task", "amount", "reason"
        )

    @admin.action(description="Block the workers (at the provider)")
    def block_worker(self, request, queryset):
        return self._each(
            request, queryset, ReasonForm, "Block", "assignment_block_worker_task", "reason"
        )

    @admin.action(description="Soft-block the workers (no more of our HITs)")
    def soft_block_worker(self, request, queryset):
        return self._each(
            request, queryset, ReasonForm, "Soft-block", "assignment_exclude_worker_task", "reason"
        )


@admin.register(Bonus)
class BonusAdmin(admin.ModelAdmin):
    list_display = ["assignment", "env", "amount", "reason", "paid_at", "created_at"]
    list_filter = ["assignment__hit__batch__environment"]
    readonly_fields = [f.name for f in Bonus._meta.fields]

    @admin.display(description="env")
    def env(self, obj):
        return badge(obj.assignment.hit.batch.environment)

    def has_add_permission(self, request):
        return False


@admin.register(WorkerExclusion)
class WorkerExclusionAdmin(admin.ModelAdmin):
    list_display = ["worker", "reason", "qualification_type_id", "created_at"]
    readonly_fields = ["worker", "qualification_type_id", "created_at"]


@admin.register(WorkerNotice)
class WorkerNoticeAdmin(admin.ModelAdmin):
    list_display = ["worker", "subject", "created_at", "seen_at"]
    readonly_fields = ["worker", "created_at", "seen_at"]
