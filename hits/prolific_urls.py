from django.urls import path

from . import prolific_views as views

app_name = "prolific"

urlpatterns = [
    path("b/<uuid:uid>/", views.study_entry, name="study"),
    path("mturk/externalSubmit", views.external_submit, name="external-submit"),
]
