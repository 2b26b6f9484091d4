"""State of the offline MTurk-protocol endpoint (simulated requester accounts and workers).

Everything here plays MTurk's side: raw worker ids live here because MTurk keeps them; our own
app (hits, annotation) still only ever stores keyed hashes. Each ``realm`` is an independent
simulated MTurk (the default endpoint is realm ``default``; ``/localturk/realm/<name>/`` is
another), so tests can tell a sandbox endpoint from a live one.
"""

from decimal import Decimal

from django.db import models
from django.db.models import Q


class Account(models.Model):
    realm = models.SlugField(max_length=40, unique=True)
    balance = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("10000.00"))

    def __str__(self) -> str:
        return f"{self.realm}: ${self.balance}"


class SimWorker(models.Model):
    """A simulated MTurk worker and the system qualifications MTurk would hold for them."""

    worker_id = models.CharField(max_length=64, unique=True)
    masters = models.BooleanField(default=False)
    approval_rate = models.PositiveSmallIntegerField(default=100, help_text="percent")
    approved_count = models.PositiveIntegerField(default=1000)
    locale_country = models.CharField(max_length=2, default="US")
    locale_subdivision = models.CharField(max_length=2, blank=True)

    def __str__(self) -> str:
        return self.worker_id


class QualificationType(models.Model):
    realm = models.SlugField(max_length=40)
    qualification_type_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["realm", "name"], name="lt_qualtype_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class WorkerQualification(models.Model):
    """A custom qualification value a simulated worker holds (system ones are on SimWorker)."""

    worker = models.ForeignKey(SimWorker, on_delete=models.CASCADE, related_name="qualifications")
    qualification_type_id = models.CharField(max_length=64)
    integer_value = models.IntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "qualification_type_id"], name="lt_workerqual_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.qualification_type_id}={self.integer_value}"


class HitType(models.Model):
    realm = models.SlugField(max_length=40)
    hit_type_id = models.CharField(max_length=64, unique=True)
    signature = models.CharField(max_length=64, help_text="Hash of the properties.")
    title = models.CharField(max_length=128)
    description = models.TextField()
    keywords = models.TextField(blank=True)
    reward = models.DecimalField(max_digits=8, decimal_places=2)
    assignment_duration = models.PositiveIntegerField()
    auto_approval_delay = models.PositiveIntegerField()
    qualification_requirements = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["realm", "signature"], name="lt_hittype_unique_sig")
        ]

    def __str__(self) -> str:
        return self.hit_type_id


class Hit(models.Model):
    realm = models.SlugField(max_length=40, db_index=True)
    hit_id = models.CharField(max_length=64, unique=True)
    hit_type = models.ForeignKey(HitType, on_delete=models.PROTECT, related_name="hits")
    question = models.TextField()
    external_url = models.URLField(max_length=2000)
    frame_height = models.PositiveIntegerField(default=0)
    max_assignments = models.PositiveIntegerField()
    requester_annotation = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    reviewing = models.BooleanField(default=False)
    disposed = models.BooleanField(default=False)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.hit_id


class Assignment(models.Model):
    class Status(models.TextChoices):
        ACCEPTED = "Accepted"
        SUBMITTED = "Submitted"
        APPROVED = "Approved"
        REJECTED = "Rejected"
        RETURNED = "Returned"
        ABANDONED = "Abandoned"

    assignment_id = models.CharField(max_length=64, unique=True)
    hit = models.ForeignKey(Hit, on_delete=models.CASCADE, related_name="assignments")
    worker = models.ForeignKey(SimWorker, on_delete=models.PROTECT, related_name="assignments")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACCEPTED)
    accept_time = models.DateTimeField()
    deadline = models.DateTimeField()
    submit_time = models.DateTimeField(null=True, blank=True)
    auto_approval_time = models.DateTimeField(null=True, blank=True)
    approval_time = models.DateTimeField(null=True, blank=True)
    rejection_time = models.DateTimeField(null=True, blank=True)
    answer = models.TextField(blank=True, help_text="QuestionFormAnswers XML.")
    requester_feedback = models.TextField(blank=True)

    class Meta:
        ordering = ["accept_time", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["hit", "worker"],
                condition=~Q(status__in=["Returned", "Abandoned"]),
                name="lt_one_assignment_per_worker",
            )
        ]

    def __str__(self) -> str:
        return f"{self.assignment_id} ({self.status})"


class Bonus(models.Model):
    realm = models.SlugField(max_length=40)
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="bonuses")
    worker = models.ForeignKey(SimWorker, on_delete=models.PROTECT)
    amount = models.DecimalField(max_digits=8, decimal_places=2)
    reason = models.TextField()
    granted_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"${self.amount} to {self.worker_id}"


class WorkerBlock(models.Model):
    realm = models.SlugField(max_length=40)
    worker = models.ForeignKey(SimWorker, on_delete=models.CASCADE)
    reason = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["realm", "worker"], name="lt_block_unique")]

    def __str__(self) -> str:
        return f"block {self.worker_id} in {self.realm}"


class Notification(models.Model):
    realm = models.SlugField(max_length=40)
    worker = models.ForeignKey(SimWorker, on_delete=models.CASCADE)
    subject = models.CharField(max_length=200)
    message = models.TextField()
    sent_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.subject


class RequestToken(models.Model):
    """A UniqueRequestToken seen by an operation, with what it created (valid for 24 hours)."""

    realm = models.SlugField(max_length=40)
    operation = models.CharField(max_length=64)
    token = models.CharField(max_length=64)
    result = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["realm", "operation", "token"], name="lt_token_unique")
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.token}"


class FaultPlan(models.Model):
    """Faults to inject into a realm's requester API, for tests of retries and resumption.

    A call is picked by a seeded hash of its sequence number; ``after`` faults run the operation
    and then answer 500 (the response is lost, as on a network timeout). ``max_consecutive``
    bounds a run of injected failures so a client with enough retries always gets through.
    """

    realm = models.SlugField(max_length=40, unique=True)
    throttle_rate = models.FloatField(default=0.0)
    fault_rate = models.FloatField(default=0.0)
    fault_after_rate = models.FloatField(default=0.0)
    delay_rate = models.FloatField(default=0.0)
    delay_ms = models.PositiveIntegerField(default=0)
    operations = models.JSONField(default=list, blank=True, help_text="Empty = all.")
    max_consecutive = models.PositiveIntegerField(default=2)
    seed = models.IntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    consecutive = models.PositiveIntegerField(default=0)
    injected = models.JSONField(default=dict, blank=True, help_text="Counts by fault kind.")

    def __str__(self) -> str:
        return f"faults for {self.realm}"


class CallLog(models.Model):
    """Every requester API call a realm received: which endpoint was reached, and the outcome."""

    realm = models.SlugField(max_length=40, db_index=True)
    operation = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    error_code = models.CharField(max_length=100, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.realm} {self.operation} {self.status}"
