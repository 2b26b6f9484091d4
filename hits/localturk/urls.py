from django.urls import path

from . import api, views

app_name = "localturk"

urlpatterns = [
    path("", api.requester_api, name="api"),
    path("realm/<slug:realm>/", api.requester_api, name="api-realm"),
    path("mturk/externalSubmit", views.external_submit, name="external-submit"),
    path("worker/", views.hit_list, name="hit-list"),
    path("worker/login/", views.worker_login, name="login"),
    path("worker/hits/<str:hit_id>/", views.hit_preview, name="hit-preview"),
    path("worker/hits/<str:hit_id>/accept/", views.hit_accept, name="hit-accept"),
    path("worker/assignments/<str:assignment_id>/", views.assignment_frame, name="assignment"),
    path(
        "worker/assignments/<str:assignment_id>/return/",
        views.assignment_return,
        name="assignment-return",
    ),
]
