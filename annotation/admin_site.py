"""The admin's home page grouped by what a researcher does (datasets, batches, workers,
curation), not by the Python app that happens to hold each model. Part of the project shell:
it names models of every app by label only, and imports none of them."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.checks import check_admin_app, check_dependencies
from django.core import checks

# (section, models as "app_label.ModelName"), in the order shown. A registered model that no
# section names keeps its app's own section, after these.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Datasets",
        (
            "annotation.Dataset",
            "annotation.Item",
            "annotation.Vote",
            "annotation.AggregationRun",
            "annotation.AggregatedLabel",
            "annotation.LabelChange",
        ),
    ),
    ("Batches", ("hits.HitBatch", "hits.Hit", "hits.Assignment", "hits.Bonus")),
    ("Workers", ("annotation.Worker", "hits.WorkerNotice", "hits.WorkerExclusion")),
    ("Curation", ("curation.CurationRun", "curation.LabelIssue", "curation.RetrievalRun")),
    ("Accounts", ("auth.User", "auth.Group", "authtoken.TokenProxy")),
)


def sections_group(app_list: list[dict]) -> list[dict]:
    """Regroup Django's per-app list (as ``AdminSite.get_app_list`` builds it) into SECTIONS."""
    by_label = {
        f"{app['app_label']}.{model['object_name']}": (app, model)
        for app in app_list
        for model in app["models"]
    }
    placed: set[str] = set()
    grouped = []
    for title, labels in SECTIONS:
        found = [by_label[label] for label in labels if label in by_label]
        if not found:
            continue
        placed.update(label for label in labels if label in by_label)
        first_app = found[0][0]
        grouped.append(
            {
                **first_app,
                "name": title,
                "models": [model for _, model in found],
                # The heading leads to its first list (Datasets -> the datasets).
                "app_url": found[0][1].get("admin_url") or first_app["app_url"],
            }
        )
    for app in app_list:  # anything else, in its own app's section (e.g. the MTurk stand-in)
        rest = [m for m in app["models"] if f"{app['app_label']}.{m['object_name']}" not in placed]
        if rest:
            grouped.append({**app, "models": rest})
    return grouped


class ResearchAdminSite(admin.AdminSite):
    site_header = "Crowd annotation"
    site_title = "Crowd annotation admin"
    index_title = "Datasets, batches, workers, curation"

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        return apps if app_label else sections_group(apps)


def _check_admin_after_discovery(app_configs, **kwargs):
    admin.autodiscover()
    return check_admin_app(app_configs, **kwargs)


class ResearchAdminConfig(AdminConfig):
    """The admin app, its ``admin`` modules loaded on demand.

    The stock admin imports every app's admin module (and through them selectors, aggregation
    and provider services) when Django starts, which a command that only reads files would pay
    for on every run. Here they load with the URL conf (``annotation/urls.py``), which every
    request and the URL system check import, and before the admin's own system check, so that
    check still sees every registered model.
    """

    default_site = "annotation.admin_site.ResearchAdminSite"

    def ready(self) -> None:
        # AdminConfig.ready without the autodiscovery, which moves into the admin check.
        checks.register(check_dependencies, checks.Tags.admin)
        checks.register(_check_admin_after_discovery, checks.Tags.admin)
