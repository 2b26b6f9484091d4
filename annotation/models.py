"""Core domain: datasets, items, workers (keyed-hash ids only), votes and aggregated labels."""

import secrets
from pathlib import PurePosixPath

from django.db import models
from django.db.models import Q


class TaskKind(models.TextChoices):
    COMPLEMENTARY = "complementary", "Complementary label"
    VERIFY = "verify", "Verify label"
    SELECT = "select", "Select matching images"
    REVIEW = "review", "Review label error"
    LABEL = "label", "Classify (which of K classes)"


class Split(models.TextChoices):
    UNSPECIFIED = "", "Unspecified"
    TRAIN = "train", "Train"
    VALIDATION = "val", "Validation"
    TEST = "test", "Test"


class Dataset(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    class_names = models.JSONField(help_text="Ordered class names; a label is an index into it.")
    attribute_schema = models.JSONField(
        default=list, blank=True, help_text='Attribute names shown with a class, e.g. ["Color"].'
    )
    class_attributes = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per class name, the attribute text shown in select tasks.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# Suffixes a stored item image may have; anything else is stored as opaque bytes.
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif"}


def item_image_path(item: "Item", filename: str) -> str:
    """Where a new item image is stored: a random name (not derivable from the item or the
    content, so a media URL cannot be guessed) keeping only an image suffix. Rows keep the
    name they were stored under, so older names stay valid."""
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix not in _IMAGE_SUFFIXES:
        suffix = ".bin"
    return f"datasets/{item.dataset_id}/{secrets.token_hex(16)}{suffix}"


class Item(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="items")
    index = models.PositiveIntegerField(help_text="Stable position used by every export.")
    name = models.CharField(max_length=255, help_text="Original file name.")
    image = models.FileField(upload_to=item_image_path, max_length=255)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    given_label = models.IntegerField(null=True, blank=True)
    label = models.IntegerField(
        null=True, blank=True, help_text="Current label; starts as the given label."
    )
    gold_label = models.IntegerField(
        null=True, blank=True, help_text="Known answer, when the item may serve as a gold item."
    )
    attributes = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(
        default=dict,
        blank=True,
        help_text='Per-image facts of an unlabeled pool, e.g. {"timestamp": ..., "bucket": '
        '"2012", "text": ...}; a pool is curated bucket by bucket.',
    )
    split = models.CharField(
        max_length=8, choices=Split.choices, default=Split.UNSPECIFIED, blank=True
    )

    class Meta:
        ordering = ["dataset", "index"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "index"], name="item_unique_index"),
            models.UniqueConstraint(fields=["dataset", "name"], name="item_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name}#{self.index}"


class LabelChange(models.Model):
    """Why an item's current label changed: the label history."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="label_changes")
    old_label = models.IntegerField(null=True)
    new_label = models.IntegerField(null=True)
    reason = models.TextField()
    source = models.CharField(
        max_length=64, help_text="e.g. curation:run-3, aggregation:dawid_skene"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.item}: {self.old_label} -> {self.new_label} ({self.source})"


class Worker(models.Model):
    """A crowd worker, known only by a keyed hash of the provider's id."""

    class Provider(models.TextChoices):
        MTURK = "mturk", "MTurk"
        MARKET = "market", "Built-in marketplace"
        PROLIFIC = "prolific", "Prolific"
        IMPORTED = "imported", "Imported"

    provider = models.CharField(max_length=16, choices=Provider.choices)
    id_hash = models.CharField(max_length=64, help_text="HMAC-SHA256 of the provider's worker id.")
    id_sha1 = models.CharField(
        max_length=40,
        blank=True,
        help_text="Unsalted SHA-1 (CLImage's published form); kept only when "
        "WORKER_ID_KEEP_SHA1 is on at collection time.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    blocked = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "id_hash"], name="worker_unique_hash")
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.id_hash[:12]}"


class VoteQuerySet(models.QuerySet):
    def counted(self) -> "VoteQuerySet":
        """The votes that count towards labels, exports and pay: imported votes and those of
        assignments the marketplace confirmed (work it has not confirmed waits for sync)."""
        return self.exclude(assignment__confirmed=False)


class Vote(models.Model):
    """One answer by one worker about one item.

    ``answer`` by kind: complementary — the class chosen as NOT the label; verify — 0 correct,
    1 not sure, 2 wrong (about ``shown_label``); select — 1 selected, 0 seen but not selected;
    review — 0 given, 1 suggested, 2 both, 3 neither; label — the class index chosen.

    ``candidates`` holds the labels shown, in display order: for complementary the classes
    offered, for review ``[given, suggested]`` or ``[suggested, given]`` as the page showed them
    (the answer keeps its meaning whatever the order); null when unknown.
    """

    class Source(models.TextChoices):
        CROWD = "crowd", "Crowd"
        IMPORTED = "imported", "Imported"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="votes")
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="votes")
    kind = models.CharField(max_length=16, choices=TaskKind.choices)
    answer = models.IntegerField()
    candidates = models.JSONField(
        null=True,
        blank=True,
        help_text="Complementary: the labels shown, in order; null = unknown.",
    )
    shown_label = models.IntegerField(
        null=True, blank=True, help_text="Verify/review: given label."
    )
    suggested_label = models.IntegerField(
        null=True, blank=True, help_text="Review: suggested label."
    )
    assignment = models.ForeignKey(
        "hits.Assignment", on_delete=models.PROTECT, null=True, blank=True, related_name="votes"
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.CROWD)
    is_gold = models.BooleanField(default=False)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    objects = VoteQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["kind", "item"])]
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "item", "worker"],
                condition=Q(assignment__isnull=False),
                name="vote_once_per_assignment_item",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} vote {self.answer} on {self.item_id}"


class AggregatedLabel(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="aggregated")
    kind = models.CharField(max_length=16, choices=TaskKind.choices)
    method = models.CharField(max_length=32)
    label = models.IntegerField(help_text="-1 = unresolved")
    confidence = models.FloatField()
    probs = models.JSONField(null=True, blank=True)
    num_votes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "kind", "method"], name="aggregate_unique")
        ]

    def __str__(self) -> str:
        return f"{self.method} label {self.label} on {self.item_id}"


class AggregationRun(models.Model):
    """One aggregation of a dataset's votes of one kind: what ran, how far it got, what it wrote."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="aggregation_runs")
    kind = models.CharField(max_length=16, choices=TaskKind.choices)
    methods = models.JSONField(default=list, help_text="Method names, as stored on the labels.")
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0..1")
    num_items = models.PositiveIntegerField(default=0, help_text="Items with votes of the kind.")
    num_votes = models.PositiveIntegerField(default=0)
    num_labels = models.PositiveIntegerField(default=0, help_text="Label rows written.")
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"aggregate {self.dataset_id}/{self.kind} ({self.status})"
