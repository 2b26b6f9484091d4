import random
import secrets
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse


class Command(BaseCommand):
    help = "Import the demo dataset if missing and (re)set the demo superuser's password."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--prolific",
            action="store_true",
            help="Also launch the verify batch as a study on the offline Prolific stand-in.",
        )

    def handle(self, *args, **opts):
        if opts["prolific"] and not settings.LOCALTURK_ENABLED:
            raise CommandError(
                "--prolific needs the offline Prolific stand-in: set LOCALTURK_ENABLED=true."
            )
        call_command("import_dataset", demo=True, if_missing=True, stdout=self.stdout)
        User = get_user_model()
        user, _ = User.objects.get_or_create(
            username=opts["username"], defaults={"email": "admin@localhost"}
        )
        self._demo_batches()
        if opts["prolific"]:
            self._demo_prolific()
        password = secrets.token_urlsafe(12)
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"superuser: {user.username}  password: {password}")

    def _demo_batches(self) -> None:
        """One launched batch per task kind on the built-in marketplace, so the demo has work."""
        from annotation.models import Dataset
        from hits.models import HitBatch, ItemSelection
        from hits.services import hit_batch_launch

        dataset = Dataset.objects.get(name="digits-demo")
        if HitBatch.objects.filter(dataset=dataset).exists():
            return
        items = list(dataset.items.order_by("index")[:120])
        for kind, per_hit, n_items in [
            ("complementary", 10, 60),
            ("verify", 20, 60),
            ("select", 2, 120),
            ("review", 10, 30),
        ]:
            batch = HitBatch.objects.create(
                name=f"Demo: {kind}",
                dataset=dataset,
                kind=kind,
                item_selection=ItemSelection.EXPLICIT,
                provider="market",
                environment="market",
                items_per_hit=per_hit,
                assignments_per_item=5 if kind == "review" else 3,
            )
            if kind == "review":
                # The demo has no curation run yet: suggest a random other digit to try the page.
                rng = random.Random(0)
                batch.params = {
                    "suggested": {
                        str(it.pk): rng.choice([k for k in range(10) if k != it.label])
                        for it in items[:n_items]
                    }
                }
                batch.save(update_fields=["params"])
            batch.items.set(items[:n_items])
            hit_batch_launch(batch)
            self.stdout.write(f"launched {batch.name} on the built-in marketplace")

    def _demo_prolific(self) -> None:
        """The verify batch again, as a study on the Prolific stand-in; prints its study URL."""
        from annotation.models import Dataset
        from hits.models import HitBatch, ItemSelection
        from hits.services import hit_batch_launch

        dataset = Dataset.objects.get(name="digits-demo")
        batch = HitBatch.objects.filter(dataset=dataset, provider="prolific").first()
        if batch is None:
            batch = HitBatch.objects.create(
                name="Demo: verify (Prolific)",
                dataset=dataset,
                kind="verify",
                item_selection=ItemSelection.EXPLICIT,
                provider="prolific",
                environment="prolific",
                items_per_hit=20,
                assignments_per_item=3,
                reward=Decimal("0.50"),
                params={"estimated_minutes": 2},
            )
            batch.items.set(dataset.items.order_by("index")[:60])
            hit_batch_launch(batch)
            batch.refresh_from_db()
            self.stdout.write(f"launched {batch.name} on the Prolific stand-in")
        if not batch.hit_type_id:
            self.stdout.write(f"{batch.name}: the study is not created yet ({batch.status}).")
            return
        url = settings.SITE_URL.rstrip("/") + reverse(
            "prolific-standin:take-part", args=[batch.hit_type_id]
        )
        self.stdout.write(f"Prolific study URL: {url}?participant=<a 24-character hex id>")
