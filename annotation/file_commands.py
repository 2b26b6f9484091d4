"""Management commands that work on files alone, which ``manage.py`` runs without setting Django
up when the command line holds nothing but the command's own options. Django is imported only
by ``run_in_django``, the path the management commands take."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Say = Callable[[str, bool], None]  # say(text, success)


class FileCommandError(ValueError):
    """An input or option that cannot be used; the message names it and the problem."""


@dataclass(frozen=True)
class FileCommand:
    name: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[dict, Say], None]  # raises FileCommandError
    required: str  # an option that must be present (it marks the file work)
    other_mode: frozenset[str] = frozenset()  # options of work that needs Django (--dataset)

    def parser(self, prog: str) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=f"{prog} {self.name}", description=self.description)
        self.add_arguments(parser)
        return parser

    def accepts(self, argv: list[str]) -> bool:
        """Whether ``argv`` (after the command name) holds the command's own file options only;
        anything else (Django's own options, --help, another mode) goes through Django."""
        own = {s for a in self.parser("")._actions for s in a.option_strings}
        own -= {"-h", "--help", *self.other_mode}
        given = [a.split("=", 1)[0] for a in argv if a.startswith("-")]
        return self.required in given and all(o in own for o in given)

    def main(self, prog: str, argv: list[str]) -> int:
        """Run as the management command would: an error prints ``CommandError: ...`` on stderr
        and returns 1."""
        opts = vars(self.parser(prog).parse_args(argv))
        try:
            self.run(opts, lambda text, _success: print(text))
        except FileCommandError as exc:
            print(f"CommandError: {exc}", file=sys.stderr)
            return 1
        return 0

    def run_in_django(self, command: Any, opts: dict) -> None:
        """Run from a Django management command ``command``: its stdout (success in its
        style), and a refusal raised as Django's ``CommandError``."""
        from django.core.management.base import CommandError

        def say(text: str, success: bool) -> None:
            command.stdout.write(command.style.SUCCESS(text) if success else text)

        try:
            self.run(opts, say)
        except FileCommandError as exc:
            raise CommandError(str(exc)) from None
