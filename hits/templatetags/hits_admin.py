"""The environment banner every admin page of the hits app carries (SANDBOX / LIVE / MARKET)."""

from __future__ import annotations

from django import template
from django.db.models import Count
from django.utils.html import format_html, format_html_join

from hits.models import Assignment, Bonus, Environment, Hit, HitBatch

register = template.Library()

COLORS = {
    Environment.LIVE: ("#b71c1c", "#fff"),
    Environment.SANDBOX: ("#ffb300", "#000"),
    Environment.MARKET: ("#2e7d32", "#fff"),
}
NOTES = {
    Environment.LIVE: "real workers, real money",
    Environment.SANDBOX: "MTurk sandbox: no money moves",
    Environment.MARKET: "built-in marketplace",
}
# How each model of the app reaches its batch's environment.
ENV_PATH = {
    HitBatch: "environment",
    Hit: "batch__environment",
    Assignment: "hit__batch__environment",
    Bonus: "assignment__hit__batch__environment",
}


def badge(env: str, size: str = "1em") -> str:
    bg, fg = COLORS.get(env, ("#555", "#fff"))
    return format_html(
        '<span class="hits-env hits-env-{}" style="background:{};color:{};font-weight:bold;'
        'padding:.15em .6em;border-radius:.25em;font-size:{};letter-spacing:.05em">{}</span>',
        env,
        bg,
        fg,
        size,
        env.upper(),
    )


def _object_env(obj) -> str | None:
    path = ENV_PATH.get(type(obj))
    if path is None:
        return None
    for part in path.split("__"):
        obj = getattr(obj, part)
    return obj


@register.simple_tag(takes_context=True)
def env_banner(context) -> str:
    """One object's environment in large type, or the environments a list page shows."""
    env = context.get("hits_env") or _object_env(context.get("original") or context.get("object"))
    if env:
        bg, fg = COLORS.get(env, ("#555", "#fff"))
        return format_html(
            '<div class="hits-env-banner" style="background:{};color:{};padding:.6em 1em;'
            'margin:0 0 1em;font-size:1.4em;font-weight:bold;border-radius:.3em">'
            "{} — {}</div>",
            bg,
            fg,
            env.upper(),
            NOTES.get(env, ""),
        )
    cl = context.get("cl")
    qs = cl.queryset if cl is not None else context.get("queryset")
    if qs is not None and getattr(qs, "model", None) in ENV_PATH:
        field = ENV_PATH[qs.model]
        counts = sorted(
            qs.order_by().values_list(field).annotate(n=Count("pk")).values_list(field, "n")
        )
        heading = "Environments on this page:"
    else:
        counts = sorted(HitBatch.objects.values_list("environment").annotate(n=Count("pk")))
        heading = "Batches by environment:"
    if not counts:
        return format_html(
            '<div class="hits-env-banner" style="padding:.5em 0">{}</div>',
            "Environment: no batches yet",
        )
    return format_html(
        '<div class="hits-env-banner" style="padding:.5em 0;font-size:1.2em">{} {}</div>',
        heading,
        format_html_join(" ", "{} ({})", ((badge(env, "1.1em"), n) for env, n in counts)),
    )


# Amazon's announcement: Mechanical Turk took no new customers from 2026-07-30 and is to shut
# down on 2026-09-30. Shown wherever a researcher is about to use it.
MTURK_NO_NEW_CUSTOMERS = "2026-07-30"
MTURK_SHUTDOWN = "2026-09-30"


@register.simple_tag
def mturk_notice(batch: HitBatch) -> str:
    """A notice on an MTurk batch's pages: Amazon closed MTurk; our marketplace and Prolific
    run the same study."""
    if batch is None or batch.provider != "mturk":
        return ""
    return format_html(
        '<p class="errornote" id="mturk-notice">Amazon closed Mechanical Turk to new customers '
        "on {} and announced its shutdown for {}: an account that still works may stop at any "
        "time. The same batch runs on the built-in marketplace (provider “market”) or on "
        "Prolific.</p>",
        MTURK_NO_NEW_CUSTOMERS,
        MTURK_SHUTDOWN,
    )


@register.filter
def days(seconds: int | None) -> str:
    """``259200`` -> ``3 days``; under a day in hours."""
    if seconds is None:
        return ""
    if seconds < 86400:
        hours = max(1, round(seconds / 3600))
        return f"{hours} hour{'s' if hours != 1 else ''}"
    n = round(seconds / 86400, 1)
    n_text = f"{n:g}"
    return f"{n_text} day{'s' if n_text != '1' else ''}"
