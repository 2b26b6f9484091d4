"""Curation runs, the label issues they flag, and the HIT batches that review them."""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.db import models

from annotation.models import Dataset, Item


class CurationRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class FeatureSource(models.TextChoices):
        BUILTIN = "builtin", "Built-in small CNN (early learning)"
        NPY = "npy", "Precomputed features (.npy)"
        TORCHSCRIPT = "torchscript", "Local TorchScript model"
        PRED_PROBS = "pred_probs", "Supplied predicted probabilities (.npy)"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="curation_runs")
    item_selection = models.JSONField(
        default=dict,
        blank=True,
        help_text='{} = every item; or {"indices": [...]}, {"item_ids": [...]}, '
        '{"start": 0, "stop": 500}, {"split": "test"}.',
    )
    feature_source = models.CharField(
        max_length=16, choices=FeatureSource.choices, default=FeatureSource.BUILTIN
    )
    feature_path = models.CharField(
        max_length=500,
        blank=True,
        help_text="npy / pred_probs: a .npy with one row per dataset item (row = item index); "
        "torchscript: the model file.",
    )
    detectors = models.JSONField(
        default=list,
        blank=True,
        help_text='Any of "knn", "confident_learning", "low_confidence"; empty = by source.',
    )
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    progress = models.FloatField(default=0.0)
    message = models.TextField(blank=True)
    timings = models.JSONField(default=dict, blank=True)
    device = models.CharField(max_length=64, blank=True)
    num_items = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Curation run {self.pk} on {self.dataset}"

    @property
    def source(self) -> str:
        """The LabelChange source of corrections made from this run's reviews."""
        return f"curation:run-{self.pk}"


class LabelIssue(models.Model):
    class Resolution(models.TextChoices):
        OPEN = "open", "Open"
        IN_REVIEW = "in_review", "In review"
        CONFIRMED = "confirmed", "Confirmed error (label corrected)"
        ERROR = "error", "Confirmed error (no agreed label; kept)"
        KEPT = "kept", "Label kept"
        NO_CONSENSUS = "no_consensus", "No consensus"

    run = models.ForeignKey(CurationRun, on_delete=models.CASCADE, related_name="issues")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="label_issues")
    current_label = models.IntegerField(null=True)
    suggested_label = models.IntegerField()
    score = models.FloatField()
    detectors = models.JSONField(default=list)
    resolution = models.CharField(
        max_length=16, choices=Resolution.choices, default=Resolution.OPEN
    )
    resolved_label = models.IntegerField(null=True, blank=True)
    review_batch = models.ForeignKey(
        "hits.HitBatch",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="label_issues",
    )
    review_counts = models.JSONField(
        default=dict, blank=True, help_text="Review answers counted, e.g. {given: 1, suggested: 4}"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-score"]
        constraints = [
            models.UniqueConstraint(fields=["run", "item"], name="issue_unique_item_per_run")
        ]
        indexes = [models.Index(fields=["run", "resolution"])]

    def __str__(self) -> str:
        return f"issue on {self.item}: {self.current_label} -> {self.suggested_label}"


class ReviewBatch(models.Model):
    """A HIT batch that reviews a run's issues. Kept here, not on HitBatch, so that hits never
    refers to curation; a batch reviews at most one run."""

    run = models.ForeignKey(CurationRun, on_delete=models.CASCADE, related_name="review_batches")
    batch = models.OneToOneField(
        "hits.HitBatch", on_delete=models.CASCADE, related_name="curation_review"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"batch {self.batch_id} reviews curation run {self.run_id}"


def random_seed() -> int:
    """A new run's sampling seed: random, and kept, so its rounds can be drawn again."""
    return secrets.randbits(31)


class RetrievalRun(models.Model):
    """Find a pool's images of each class: rank them with an embedding backend, then verify the
    ranked lists with the crowd, stretch by stretch, to a target precision."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RANKED = "ranked", "Ranked"
        VERIFYING = "verifying", "Verifying (a round is out)"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Backend(models.TextChoices):
        OFFLINE = "offline", "Offline (image statistics; tests and demo)"
        NPY = "npy", "Precomputed embeddings (.npy)"
        OPEN_CLIP = "open_clip", "open_clip (local weights)"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="retrieval_runs")
    bucket_field = models.CharField(max_length=16, default="bucket", blank=True)
    bucket = models.CharField(
        max_length=100, blank=True, help_text="Only items whose metadata field has this value."
    )
    backend = models.CharField(max_length=16, choices=Backend.choices, default=Backend.OFFLINE)
    embeddings_path = models.CharField(
        max_length=500, blank=True, help_text="npy: image embeddings, one row per item index."
    )
    text_path = models.CharField(
        max_length=500, blank=True, help_text="npy: text embeddings, one row per class."
    )
    templates = models.JSONField(default=list, blank=True)
    negatives = models.JSONField(
        default=dict, blank=True, help_text="Class name -> negative prompts."
    )
    examples = models.JSONField(
        default=dict, blank=True, help_text="Class name -> example item names (also gold)."
    )
    review_margin = models.FloatField(default=0.02)
    target = models.FloatField(default=0.99)
    confidence = models.FloatField(default=0.95)
    stretch = models.PositiveIntegerField(default=1000)
    sample = models.PositiveIntegerField(default=300)
    max_rounds = models.PositiveIntegerField(default=20)
    seed = models.PositiveIntegerField(
        default=random_seed, help_text="Draws each round's sample: the same seed, the same rounds."
    )
    budget = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    reward = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0.05"))
    assignments_per_item = models.PositiveIntegerField(default=3)
    items_per_hit = models.PositiveIntegerField(default=20)
    gold_rate = models.FloatField(default=0.0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    progress = models.JSONField(
        default=dict, blank=True, help_text="Per class: position, stretches, why it stopped."
    )
    message = models.TextField(blank=True)
    output = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="retrieved_by"
    )
    review_batch = models.OneToOneField(
        "hits.HitBatch",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="retrieval_review",
        help_text="The review batch of the images two classes claim.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Retrieval run {self.pk} on {self.dataset}"


# Candidates claimed by two classes, off both lists: waiting, out for review, decided.
REVIEW_STATES = ("review", "reviewing", "review_kept", "review_dropped")


class CandidateQuerySet(models.QuerySet):
    def on_list(self, label: int) -> CandidateQuerySet:
        """Class ``label``'s ranked list (what rank positions refer to)."""
        return self.filter(label=label).exclude(state__in=REVIEW_STATES)


class RetrievalCandidate(models.Model):
    """A pool image on a class's ranked list (or sent to review when two classes claim it)."""

    class State(models.TextChoices):
        LISTED = "listed", "Listed"
        SAMPLED = "sampled", "Out for verification"
        CORRECT = "correct", "Verified correct"
        WRONG = "wrong", "Verified wrong or unsure"
        KEPT = "kept", "Kept (accepted stretch)"
        LEFT = "left", "Left (below the stretch that stopped)"
        REVIEW = "review", "Claimed by two classes"
        REVIEWING = "reviewing", "Out for review (two classes)"
        REVIEW_KEPT = "review_kept", "Kept after review"
        REVIEW_DROPPED = "review_dropped", "Dropped after review"

    run = models.ForeignKey(RetrievalRun, on_delete=models.CASCADE, related_name="candidates")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="retrieval_candidates")
    label = models.IntegerField()
    runner_up = models.IntegerField(
        null=True, blank=True, help_text="Review: the other class claiming the image."
    )
    score = models.FloatField()
    rank = models.PositiveIntegerField(help_text="Position on the class's list, from 0.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.LISTED)
    votes = models.JSONField(default=dict, blank=True, help_text="Answers counted.")

    objects = CandidateQuerySet.as_manager()

    class Meta:
        ordering = ["run", "label", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["run", "item"], name="candidate_unique_item_per_run")
        ]
        indexes = [models.Index(fields=["run", "label", "rank"])]

    def __str__(self) -> str:
        return f"{self.item} for class {self.label} (#{self.rank})"


class RetrievalRound(models.Model):
    """One verify batch of a retrieval run: the samples of every class still going."""

    run = models.ForeignKey(RetrievalRun, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField()
    batch = models.OneToOneField(
        "hits.HitBatch", on_delete=models.CASCADE, related_name="retrieval_round"
    )
    folded = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="round_unique_number")
        ]

    def __str__(self) -> str:
        return f"round {self.number} of retrieval run {self.run_id}"
