#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation.settings")
    if "DJANGO_ENV" not in os.environ and "SECRET_KEY" not in os.environ:
        # A shell with no production settings at all runs commands on the local embedded
        # defaults (the demo's SQLite under var/), as the README's commands expect. Production
        # sets DJANGO_ENV=production and its secrets; the web and Celery processes never come
        # through here and keep production as their default.
        os.environ["DJANGO_ENV"] = "development"
    if sys.argv[1:2] == ["aggregate_votes"]:
        # File mode needs neither the database nor the site: run it without setting Django up.
        from annotation.aggregate_files import file_mode_only, main

        if file_mode_only(sys.argv[2:]):
            sys.exit(main(os.path.basename(sys.argv[0]), sys.argv[2:]))
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
