"""Stored images over real HTTP: a polyglot upload is stored and served as nothing but an image,
and image URLs cannot be computed from what a visitor knows (ids, sizes, file names)."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from django.conf.urls.static import static
from PIL import Image

from annotation import urls as root_urls
from annotation.images import rendition_url
from annotation.models import Dataset, Item

from .uploads import api_upload, png_bytes

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = b"<html><body><script>document.title='owned'</script></body></html>"


def fetch(url: str, headers: dict | None = None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def site(live_server, settings, django_user_model, media_root):
    """The live site, with media served the way annotation.urls serves it under DEBUG, and a
    staff API token."""
    from rest_framework.authtoken.models import Token

    # The test server answers /media/ itself, past the middleware; another prefix reaches the
    # site's own media route (static(), as under DEBUG) and everything it applies.
    settings.MEDIA_URL = "/uploads/"
    settings.DEBUG = True  # static() adds its route only under DEBUG; the pages run without it
    media = static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
    settings.DEBUG = False
    assert media, "the media route the development server uses"
    urlconf = ModuleType("media_served_urls")
    urlconf.urlpatterns = [*media, *root_urls.urlpatterns]  # type: ignore[attr-defined]
    settings.ROOT_URLCONF = urlconf
    staff = django_user_model.objects.create_user("staff", password="pw-for-tests-1", is_staff=True)
    return SimpleNamespace(url=live_server.url, token=Token.objects.create(user=staff).key)


def upload_polyglot(site) -> tuple[int, bytes]:
    """POST /api/datasets/ a zip whose class folder holds a PNG named .html with a script."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cats/evil.html", png_bytes(1, size=24) + SCRIPT)
        zf.writestr("cats/plain.png", png_bytes(2, size=24))
        zf.writestr("dogs/dog.png", png_bytes(3, size=24))
    return api_upload(
        site, {"name": "poly", "format": "folder"}, {"file": ("poly.zip", buf.getvalue())}
    )


def test_polyglot_is_stored_and_served_only_as_a_png(site, media_root):
    status, body = upload_polyglot(site)
    assert status == 201, body
    item = Item.objects.get(dataset__name="poly", name="cats/evil.html")
    stored = Path(media_root) / item.image.name
    assert stored.suffix == ".png" and "evil" not in stored.name
    assert SCRIPT not in stored.read_bytes()  # the appended page was cut off, the image kept
    assert Image.open(stored).size == (24, 24)
    # Nothing is left of the upload besides the stored images.
    assert [p.name for p in Path(media_root).iterdir()] == ["datasets"]

    # The original file, as the media route serves it ...
    status, headers, data = fetch(site.url + item.image.url)
    assert status == 200 and data == stored.read_bytes()
    assert headers["Content-Type"] == "image/png"
    assert headers["X-Content-Type-Options"] == "nosniff"
    # ... and the rendition workers see.
    status, headers, data = fetch(site.url + rendition_url(item, 128))
    assert status == 200 and data.startswith(b"\x89PNG") and SCRIPT not in data
    assert headers["Content-Type"] == "image/png"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_guessed_image_urls_answer_404(site, media_root):
    assert upload_polyglot(site)[0] == 201
    item = Item.objects.get(dataset__name="poly", name="cats/plain.png")
    good = rendition_url(item, 200)
    assert fetch(site.url + good)[0] == 200
    # What the URL used to be: an unkeyed hash of facts a visitor can learn or guess.
    old_key = f"{item.pk}:{item.image.name}:{item.width}x{item.height}:200".encode()
    guesses = [
        f"/i/{item.pk}-200-{hashlib.blake2b(old_key, digest_size=8).hexdigest()}.png",
        f"/i/{item.pk}-200-{'0' * 16}.png",
        f"/i/{item.pk}-200-{good.split('-')[-1][:-4][::-1]}.png",
        good.replace(f"/i/{item.pk}-", f"/i/{item.pk + 1}-"),  # another item, same digest
        good.replace("-200-", "-400-"),  # another size, same digest
    ]
    for guess in guesses:
        status, headers, _ = fetch(site.url + guess)
        assert status == 404, guess
    # Media names are random: neither the item index nor the upload's name finds a file.
    dataset = Dataset.objects.get(name="poly")
    for name in ("000000.png", "000001.png", "plain.png", f"{item.index:06d}.png"):
        assert fetch(f"{site.url}/uploads/datasets/{dataset.pk}/{name}")[0] == 404
