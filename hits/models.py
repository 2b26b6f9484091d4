"""Batches of HITs and the provider's records of them, linked to our items and votes."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import Dataset, Item, TaskKind, Worker


class Provider(models.TextChoices):
    MTURK = "mturk", "Amazon Mechanical Turk"
    MARKET = "market", "Built-in marketplace"
    PROLIFIC = "prolific", "Prolific"


# Providers whose HITs our own site hands out (its accept is the only door to an assignment).
HOSTED_PROVIDERS = (Provider.MARKET, Provider.PROLIFIC)


class Environment(models.TextChoices):
    SANDBOX = "sandbox", "SANDBOX"
    LIVE = "live", "LIVE"
    MARKET = "market", "MARKET"
    PROLIFIC = "prolific", "PROLIFIC"


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

    uid = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text="Names this batch at the provider (request tokens, requester annotations).",
    )
    name = models.CharField(max_length=200)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="batches")
    kind = models.CharField(max_length=16, choices=TaskKind.choices)
    params = models.JSONField(default=dict, blank=True, help_text="Task-kind parameters.")
    item_selection = models.CharField(
        max_length=16, choices=ItemSelection.choices, default=ItemSelection.ALL
    )
    items = models.ManyToManyField(Item, blank=True, related_name="batches")
    repost_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reposts"
    )
    provider = models.CharField(max_length=8, choices=Provider.choices, default=Provider.MARKET)
    environment = models.CharField(
        max_length=8, choices=Environment.choices, default=Environment.MARKET
    )
    title = models.CharField(max_length=128, blank=True, help_text="Shown to workers.")
    description = models.TextField(blank=True, help_text="Shown to workers.")
    keywords = models.CharField(max_length=200, blank=True)
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
    qualification_params = models.JSONField(
        default=dict,
        blank=True,
        help_text='e.g. {"locales": ["US"], "custom": [{"QualificationTypeId": "...", '
        '"Comparator": "GreaterThan", "IntegerValues": [80]}], '
        '"allow_hashes": [...], "block_hashes": [...]}',
    )
    bonus_budget = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=Decimal("0"),
        help_text="Bonuses you plan to pay; counted (with fees) against the budget cap.",
    )
    budget_cap = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="The most this batch may cost, with fees; with the automatic loop on, its "
        "extra votes and review batch too.",
    )
    # Adaptive overlap: the batch starts with ``assignments_per_item`` votes per item, and the
    # votes' posterior decides which items get more, up to ``max_votes`` (all three set, or none).
    min_votes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Adaptive overlap: votes every item gets."
    )
    max_votes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Adaptive overlap: votes no item goes beyond."
    )
    confidence_target = models.FloatField(
        null=True,
        blank=True,
        help_text="Adaptive overlap: an item gets more votes while its label's posterior "
        "probability is below this (e.g. 0.9).",
    )
    auto_loop = models.BooleanField(
        default=False,
        verbose_name="automatic loop",
        help_text="Once the votes are complete, aggregate them, run curation and send the "
        "flagged items to review with the same provider, within the budget cap; no click "
        "between stages.",
    )
    loop_curation = models.JSONField(
        default=dict,
        blank=True,
        help_text='The curation run the loop starts, e.g. {"feature_source": "npy", '
        '"feature_path": "...", "detectors": ["knn"], "params": {"review_rule": "3of5"}}; '
        "{} = the built-in model on the batch's items.",
    )
    loop_stopped_at = models.DateTimeField(
        null=True, blank=True, help_text="The researcher stopped the loop: it starts nothing more."
    )
    review_rules = models.JSONField(
        default=dict,
        blank=True,
        help_text='e.g. {"approve_gold_at_least": 0.8, "reject_gold_below": 0.5, '
        '"soft_block_gold_below": 0.3, "reject_faster_than_seconds": 20, '
        '"reject_message": "..."}',
    )
    # Built-in marketplace settings.
    invite_code = models.CharField(max_length=64, blank=True)
    worker_id_param = models.CharField(
        max_length=64,
        blank=True,
        help_text="Query parameter that carries the worker id when recruited elsewhere, "
        "e.g. PROLIFIC_PID.",
    )
    max_hits_per_worker = models.PositiveIntegerField(null=True, blank=True)
    completion_code = models.CharField(max_length=64, blank=True)
    completion_redirect_url = models.URLField(
        max_length=500, blank=True, help_text="Where a worker goes after the last submit."
    )
    hit_type_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    progress = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    sync_lease_until = models.DateTimeField(
        null=True, blank=True, help_text="A sync holds the batch until then (no overlapping runs)."
    )
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "HIT batches"
        ordering = ["-created_at"]
        permissions = [("launch_live", "Can launch batches on live MTurk (real money)")]
        constraints = [
            models.CheckConstraint(
                condition=(Q(provider="mturk") & Q(environment__in=["sandbox", "live"]))
                | (Q(provider="market") & Q(environment="market"))
                | (Q(provider="prolific") & Q(environment="prolific")),
                name="batch_environment_matches_provider",
            ),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0) & Q(gold_rate__lt=1), name="batch_gold_rate_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.get_environment_display()}]"


class LoopStage(models.Model):
    """One stage of a batch's automatic loop, recorded once: the row is the claim that makes a
    retried or duplicated stage do nothing twice."""

    class Stage(models.TextChoices):
        AGGREGATE = "aggregate", "Aggregate votes into labels"
        CURATE = "curate", "Curation run"
        REVIEW = "review", "Review batch"
        RESOLVE = "resolve", "Corrected labels"

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        STOPPED = "stopped", "Stopped"
        FAILED = "failed", "Failed"

    batch = models.ForeignKey(HitBatch, on_delete=models.CASCADE, related_name="loop_stages")
    stage = models.CharField(max_length=16, choices=Stage.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    result = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True, help_text="Why the stage stopped or failed.")
    launched_batch = models.ForeignKey(
        HitBatch,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="launched_by_stages",
        help_text="The review batch this stage launched.",
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "started_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "stage"], name="loop_stage_once_per_batch")
        ]

    def __str__(self) -> str:
        return f"{self.get_stage_display()} of batch {self.batch_id}: {self.state}"


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
    published_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "number"]
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
    auto_approval_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    feedback = models.TextField(blank=True, help_text="The message sent with approve / reject.")
    review_note = models.CharField(
        max_length=200, blank=True, help_text="Why it was reviewed so (rule or person)."
    )
    confirmed = models.BooleanField(
        default=True,
        help_text="The provider vouched for this assignment. Votes of unconfirmed work "
        "count towards no label and no payment until a sync finds the work at the "
        "provider.",
    )
    provider_missing = models.BooleanField(
        default=False,
        verbose_name="missing at provider",
        help_text="Submitted here, but the provider's last sync did not list it.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hit", "provider_assignment_id"], name="assignment_unique_provider_id"
            ),
            # One live assignment per worker and HIT; a returned or abandoned one may be
            # followed by a new one (a new assignment id), as on MTurk.
            models.UniqueConstraint(
                fields=["hit", "worker"],
                condition=~Q(status__in=["Returned", "Abandoned"]),
                name="assignment_one_active_per_worker",
            ),
        ]

    def __str__(self) -> str:
        return f"assignment {self.provider_assignment_id} ({self.status})"


class Bonus(models.Model):
    """A bonus we asked the provider to pay; ``token`` makes the payment happen at most once."""

    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="bonuses")
    amount = models.DecimalField(max_digits=8, decimal_places=2)
    reason = models.TextField()
    token = models.CharField(max_length=64, unique=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "bonuses"

    def __str__(self) -> str:
        return f"${self.amount} bonus on {self.assignment.provider_assignment_id}"


class WorkerNotice(models.Model):
    """A message to a built-in-marketplace worker, shown on their next visit."""

    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="notices")
    subject = models.CharField(max_length=200)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    seen_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.subject


class WorkerExclusion(models.Model):
    """A soft block: the worker gets none of our future HITs, without an MTurk block.

    On MTurk it is enforced by a qualification of our own (the requirement "does not exist" on
    every HIT type); ``qualification_type_id`` names it once granted at the provider.
    """

    worker = models.OneToOneField(Worker, on_delete=models.CASCADE, related_name="exclusion")
    reason = models.CharField(max_length=200)
    qualification_type_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.worker} excluded: {self.reason}"
