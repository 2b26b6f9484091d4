"""Management commands that work on files alone, which ``manage.py`` runs without setting Django
up when the command line holds nothing but the command's own options (no Django here)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

Say = Callable[[str, bool], None]  # say(text, success)


class FileCommandError(ValueError):
    """An input or option that cannot be used; the message names it and the problem."""


@dataclass(frozen=True)
class FileCommand:
    name: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[dict, Say], None]  # raises FileCommandError
    options: frozenset[str]  # the options that file work may use
    required: str  # an option that must be present (it marks the file work)

    def accepts(self, argv: list[str]) -> bool:
        """Whether ``argv`` (after the command name) holds this command's file options only;
        anything else (Django's own options, --help, another mode) goes through Django."""
        given = [a.split("=", 1)[0] for a in argv if a.startswith("-")]
        return self.required in given and all(o in self.options for o in given)

    def main(self, prog: str, argv: list[str]) -> int:
        """Run as the management command would: an error prints ``CommandError: ...`` on stderr
        and returns 1."""
        parser = argparse.ArgumentParser(prog=f"{prog} {self.name}", description=self.description)
        self.add_arguments(parser)
        opts = vars(parser.parse_args(argv))
        try:
            self.run(opts, lambda text, _success: print(text))
        except FileCommandError as exc:
            print(f"CommandError: {exc}", file=sys.stderr)
            return 1
        return 0
