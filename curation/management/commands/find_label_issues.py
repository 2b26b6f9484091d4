"""Flag likely label errors from saved arrays: ``manage.py find_label_issues``.

The work is in :mod:`curation.label_issue_files`, which ``manage.py`` also runs without setting
the site up.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from curation import label_issue_files


class Command(BaseCommand):
    help = label_issue_files.HELP
    # Works on files only: no database, URLs or admin to check, and loading the URL conf for the
    # checks would cost more start-up time than the work on a small dataset.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        label_issue_files.add_arguments(parser)

    def handle(self, *args, **opts):
        label_issue_files.COMMAND.run_in_django(self, opts)
