"""Batches of HITs and the provider's records of them, linked to our items and votes."""

from decimal import Decimal

from django.db import models

from annotation.models import Dataset, Item, TaskKind, Worker


class Provider(models.TextChoices):
    MTURK = "mturk", "Amazon Mechanical Turk"
    LOCAL = "local", "Built-in marketplace"


class Environment(models.TextChoices):
    SANDBOX = "sandbox", "SANDBOX"
    LIVE = "live", "LIVE"
    LOCAL = "local", "LOCAL"


class ItemSelection(models.TextChoices):
    ALL = "all", "All items"
    NEEDING_VOTES = "needing_votes", "Items without enough votes"
    CURATION = "curation", "Items flagged by a curation run"
    EXPLICIT = "explicit", "An explicit list"


class QualificationPreset(models.TextChoices):
    NONE = "none", "None"
    ADC = "adc", "Clothing-ADC (Masters, approval > 85%, > 500 approved)"
    CUSTOM = "custom", "Custom"


class HitBatch(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        LAUNCHING = "launching", "Launching"
        OPEN = "open", "Open"
        COMPLETE = "complete", "Complete"
        EXPIRED = "expired", "Expired"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=200)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="batches")
    kind = models.CharField(max_length=16, choices=TaskKind.choices)
    params = models.JSONField(default=dict, blank=True, help_text="Task-kind parameters.")
    item_selection = models.CharField(
        max_length=16, choices=ItemSelection.choices, default=ItemSelection.ALL
    )
    items = models.ManyToManyField(Item, blank=True, related_name="batches")
    curation_run = models.ForeignKey(
        "curation.CurationRun", null=True, blank=True, on_delete=models.SET_NULL
    )
    provider = models.CharField(max_length=8, choices=Provider.choices, default=Provider.LOCAL)
    environment = models.CharField(
        max_length=8, choices=Environment.choices, default=Environment.LOCAL
    )
    reward = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0.05"))
    assignments_per_item = models.PositiveIntegerField(default=3)
    items_per_hit = models.PositiveIntegerField(default=10)
    gold_rate = models.FloatField(default=0.0)
    lifetime_seconds = models.PositiveIntegerField(default=7 * 24 * 3600)
    assignment_duration_seconds = models.PositiveIntegerField(default=3600)
    auto_approval_delay_seconds = models.PositiveIntegerField(default=3 * 24 * 3600)
    qualification_preset = models.CharField(
        max_length=8, choices=QualificationPreset.choices, default=QualificationPreset.NONE
    )
    qualification_params = models.JSONField(default=dict, blank=True)
    budget_cap = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    progress = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "HIT batches"

    def __str__(self) -> str:
        return f"{self.name} [{self.get_environment_display()}]"


class Hit(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        ASSIGNABLE = "Assignable", "Assignable"
        UNASSIGNABLE = "Unassignable", "Unassignable"
        REVIEWABLE = "Reviewable", "Reviewable"
        REVIEWING = "Reviewing", "Reviewing"
        DISPOSED = "Disposed", "Disposed"

    batch = models.ForeignKey(HitBatch, on_delete=models.CASCADE, related_name="hits")
    number = models.PositiveIntegerField(help_text="Position within the batch; stable on resume.")
    provider_hit_id = models.CharField(max_length=64, blank=True, db_index=True)
    hit_type_id = models.CharField(max_length=64, blank=True)
    items = models.JSONField(help_text="Item ids on this HIT, in order; for select, groups.")
    gold_items = models.JSONField(default=list, blank=True)
    max_assignments = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "number"], name="hit_unique_number")
        ]

    def __str__(self) -> str:
        return f"HIT {self.number} of {self.batch.name}"


class Assignment(models.Model):
    class Status(models.TextChoices):
        ACCEPTED = "Accepted", "Accepted"
        SUBMITTED = "Submitted", "Submitted"
        APPROVED = "Approved", "Approved"
        REJECTED = "Rejected", "Rejected"
        RETURNED = "Returned", "Returned"
        ABANDONED = "Abandoned", "Abandoned"

    hit = models.ForeignKey(Hit, on_delete=models.CASCADE, related_name="assignments")
    provider_assignment_id = models.CharField(max_length=64, db_index=True)
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="assignments")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACCEPTED)
    raw_answer = models.TextField(blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    bonus = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0"))
    feedback = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hit", "provider_assignment_id"], name="assignment_unique_provider_id"
            ),
            models.UniqueConstraint(fields=["hit", "worker"], name="assignment_one_per_worker"),
        ]

    def __str__(self) -> str:
        return f"assignment {self.provider_assignment_id} ({self.status})"
