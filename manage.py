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
    # Commands on files alone need neither the database nor the site: when the command line
    # holds nothing but their own options, they run without setting Django up.
    file_commands = {
        "aggregate_votes": "annotation.aggregate_files",
        "find_label_issues": "curation.label_issue_files",
    }
    if len(sys.argv) > 1 and sys.argv[1] in file_commands:
        from importlib import import_module

        command = import_module(file_commands[sys.argv[1]]).COMMAND
        if command.accepts(sys.argv[2:]):
            sys.exit(command.main(os.path.basename(sys.argv[0]), sys.argv[2:]))
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except Exception as exc:
        from annotation.command_errors import database_error_message

        message = database_error_message(exc)
        if message is None:
            raise
        name = " ".join(os.path.basename(a) for a in sys.argv[:2])
        sys.stderr.write(f"{name}: error: {message}\n")
        sys.exit(2)
