"""The admin's home page is grouped by task: Datasets, Batches, Workers, Curation; the MTurk
stand-in's tables sit apart, under their own heading, last."""

import re

import pytest

pytestmark = pytest.mark.django_db


def sections(html: str) -> dict[str, list[str]]:
    """{caption: [model names]} in page order, from the admin index's app tables."""
    out: dict[str, list[str]] = {}
    for table in re.findall(r'<div class="app-[^"]*module[^"]*"[^>]*>(.*?)</table>', html, re.S):
        caption = re.search(r"<caption>\s*<a [^>]*>([^<]+)</a>", table)
        names = re.findall(r'<th scope="row"[^>]*>\s*<a [^>]*>([^<]+)</a>', table)
        out[caption.group(1).strip()] = [n.strip() for n in names]
    return out


def test_the_admin_home_is_grouped_by_task(admin_client, settings):
    found = sections(admin_client.get("/admin/").content.decode())
    titles = list(found)
    assert titles[:5] == ["Datasets", "Batches", "Workers", "Curation", "Accounts"], titles
    assert found["Datasets"][:3] == ["Datasets", "Items", "Votes"]
    assert found["Batches"] == ["HIT batches", "Hits", "Assignments", "Bonuses"]
    assert found["Workers"] == ["Workers", "Worker notices", "Worker exclusions"]
    assert found["Curation"][:2] == ["Curation runs", "Label issues"]
    if settings.LOCALTURK_ENABLED:  # the stand-in is on in tests: apart, after the rest
        assert titles[5:] == ["MTurk stand-in (offline testing)"]
        assert "Call logs" in found["MTurk stand-in (offline testing)"]
    else:
        assert titles[5:] == []
    # The per-app pages still work, for bookmarks and the breadcrumbs.
    assert admin_client.get("/admin/hits/").status_code == 200
