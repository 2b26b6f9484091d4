"""Curation runs, the label issues they flag, and the HIT batches that review them."""

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
