"""A choice page's problems as markup, written in Python rather than by the template engine.

The engine resolves every ``{{ p.x }}`` of every problem through its lookup machinery; on a
10-image page that loop was a third of a page view's CPU. The markup is the one the template
wrote (task.js and the page tests read it); every value from a record is escaped here, and only
this module's own constants go in unescaped.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from django.utils.safestring import SafeString, mark_safe

if TYPE_CHECKING:
    from .base import Choice, Problem

# Stands for the item id in a problem's cached choices markup.
_ITEM_SLOT = "\x00item\x00"


@functools.lru_cache(maxsize=4096)
def choices_markup(choices: tuple[Choice, ...]) -> str:
    """The radio buttons of one problem, with _ITEM_SLOT for its item id.

    Built once per set of choices (a verify or classify page repeats one set on every problem,
    so once per kind) instead of for every problem of every page."""
    out = []
    for c in choices:
        value = escape(c.value)
        hint = f"<small>{escape(c.hint)}</small>" if c.hint else ""
        key = (
            f'<span class="key" title="Keyboard shortcut">key <kbd>{escape(c.key)}</kbd></span>'
            if c.key
            else ""
        )
        out.append(
            f'\n    <label class="choice choice-{value}"><input type="radio" '
            f'name="item_{_ITEM_SLOT}" value="{value}"><span class="txt">{escape(c.text)}</span>'
            f"{hint}{key}</label>"
        )
    return "".join(out)


def refs_markup(refs: Iterable[dict[str, Any]]) -> str:
    """The small example images beside a problem's labels (review), or nothing."""
    figures = "".join(
        f'<figure class="ref-{escape(str(r["role"]))}"><img src="{escape(r["url"])}" '
        f'width="{escape(str(r["width"]))}" height="{escape(str(r["height"]))}" '
        f'alt="Example of {escape(r["name"])}" loading="lazy">'
        f"<figcaption>{escape(r['name'])}</figcaption></figure>"
        for r in refs
    )
    return (
        f'<div class="refs"><span class="muted">Examples:</span>{figures}</div>' if figures else ""
    )


def problems_markup(
    kind: Any, problems: Sequence[Problem], ctx: dict, *, preview: bool
) -> SafeString:
    """Every problem's section: image, question (``kind.question_html``), what comes before
    the choices (``kind.before_choices_html``) and the radio buttons."""
    disabled = " disabled" if preview else ""
    parts = []
    for p in problems:
        number = escape(p.number)
        choices = choices_markup(tuple(p.choices)).replace(_ITEM_SLOT, escape(p.item_id))
        parts.append(
            f'\n<section class="problem" id="p{number}" data-item="{escape(p.item_id)}" '
            f'data-n="{number}">\n'
            f'  <div class="pic"><img src="{escape(p.image_url)}" width="{escape(p.width)}" '
            f'height="{escape(p.height)}" alt="Image {number}"></div>\n'
            f'  <fieldset class="ask"{disabled}>\n'
            f'    <legend><span class="num">{number}</span>{kind.question_html(p, ctx)}</legend>\n'
            f"    {kind.before_choices_html(p, ctx)}\n"
            f'    <div class="choices">{choices}\n'
            "    </div>\n"
            "  </fieldset>\n"
            "</section>\n"
        )
    return mark_safe("".join(parts))  # noqa: S308 - every record value above is escaped


def jump_markup(problems: Sequence[Problem]) -> SafeString:
    """The bar's links to each problem."""
    links = "".join(
        f'<a href="#p{n}" data-n="{n}">{n}</a>' for n in (escape(p.number) for p in problems)
    )
    return mark_safe(links)  # noqa: S308 - numbers, escaped
