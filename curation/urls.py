from django.urls import path

from . import api, views

urlpatterns = [
    path(
        "api/curation/runs/<int:pk>/review-batch/",
        api.RunReviewBatchView.as_view(),
        name="curation-review-batch",
    ),
    path(
        "api/curation/runs/<int:pk>/resolve/", api.RunResolveView.as_view(), name="curation-resolve"
    ),
    path("curation/runs/<int:pk>/", views.run_gallery, name="curation-run-gallery"),
]
