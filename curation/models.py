"""Curation runs and the label issues they flag."""

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
    item_selection = models.JSONField(default=dict, blank=True)
    feature_source = models.CharField(
        max_length=16, choices=FeatureSource.choices, default=FeatureSource.BUILTIN
    )
    feature_path = models.CharField(max_length=500, blank=True)
    detectors = models.JSONField(default=list)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    progress = models.FloatField(default=0.0)
    message = models.TextField(blank=True)
    timings = models.JSONField(default=dict, blank=True)
    device = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Curation run {self.pk} on {self.dataset}"


class LabelIssue(models.Model):
    class Resolution(models.TextChoices):
        OPEN = "open", "Open"
        IN_REVIEW = "in_review", "In review"
        CONFIRMED = "confirmed", "Confirmed error (label corrected)"
        KEPT = "kept", "Label kept"

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

    class Meta:
        ordering = ["-score"]
        constraints = [
            models.UniqueConstraint(fields=["run", "item"], name="issue_unique_item_per_run")
        ]

    def __str__(self) -> str:
        return f"issue on {self.item}: {self.current_label} -> {self.suggested_label}"
