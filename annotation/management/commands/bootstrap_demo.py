import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Import the demo dataset if missing and (re)set the demo superuser's password."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, **opts):
        call_command("import_dataset", demo=True, if_missing=True, stdout=self.stdout)
        User = get_user_model()
        user, _ = User.objects.get_or_create(
            username=opts["username"], defaults={"email": "admin@localhost"}
        )
        password = secrets.token_urlsafe(12)
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"superuser: {user.username}  password: {password}")
