from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from hits import api as hits_api
from hits import results as hits_results

from . import api, views

# The admin modules load here, with the URLs, rather than with every command (admin_site.py).
admin.autodiscover()

router = DefaultRouter()
router.register("datasets", api.DatasetViewSet, basename="dataset")
router.register("items", api.ItemViewSet, basename="item")
router.register("votes", api.VoteViewSet, basename="vote")
router.register("hits/batches", hits_api.HitBatchViewSet, basename="batch-api")
router.register("hits/assignments", hits_api.AssignmentViewSet, basename="assignment-api")

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/", include(router.urls)),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(permission_classes=[api.SchemaAccess]),
        name="api-schema",
    ),
    path("api/docs/", api.ApiDocs.as_view(url_name="api-schema"), name="api-docs"),
    # The browsable API's "Log in" link.
    path("api-auth/", include("rest_framework.urls")),
    path(
        "hits/batches/<int:pk>/results-<str:rows>.csv",
        hits_results.batch_results_csv,
        name="batch-results",
    ),
    path("", include("curation.urls")),
    path("", include("hits.task_urls")),
    path("market/", include("hits.market_urls")),
    path("prolific/", include("hits.prolific_urls")),
    *([path("localturk/", include("hits.localturk.urls"))] if settings.LOCALTURK_ENABLED else []),
    *(
        [path("prolific-standin/", include("hits.prolific_standin.urls"))]
        if settings.LOCALTURK_ENABLED
        else []
    ),
    path("i/<int:item_id>-<int:size>-<str:digest>.png", views.item_image, name="item-image"),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
