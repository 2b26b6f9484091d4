"""Site views of the annotation app (images, home page)."""

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from .images import DISPLAY_SIZES, is_current_digest, rendition_bytes
from .models import Dataset, Item


@require_GET
def item_image(request, item_id: int, size: int, digest: str):
    """A rendition, only at the keyed URL ``rendition_url`` gave out; anything else is a 404."""
    if size not in DISPLAY_SIZES:
        raise Http404("unknown size")
    item = get_object_or_404(Item, pk=item_id)
    if not is_current_digest(item, size, digest):
        raise Http404("unknown image URL")
    resp = HttpResponse(rendition_bytes(item, size), content_type="image/png")
    # The URL names the stored file, so the bytes behind it never change.
    resp["Cache-Control"] = "public, max-age=31536000, immutable"
    # Set here, not only by SecurityMiddleware: an image must never be sniffed as anything else.
    resp["X-Content-Type-Options"] = "nosniff"
    return resp


@require_GET
def home(request):
    return render(request, "home.html", {"datasets": Dataset.objects.all()})
