"""Worker-facing task pages, at the site root: /task/<hit_pk>/ and its submit endpoint."""

from django.urls import path

from . import task_views

urlpatterns = [
    path("task/<int:hit_pk>/", task_views.task_page, name="task-page"),
    path("task/<int:hit_pk>/submit/", task_views.task_submit_view, name="task-submit"),
]
