from django.urls import path

from . import market_views as views

app_name = "market"

urlpatterns = [
    path("", views.market_home, name="home"),
    path("me/", views.identity, name="identity"),
    path("b/<uuid:uid>/", views.batch_page, name="batch"),
    path("b/<uuid:uid>/start/", views.batch_start, name="start"),
    path("hits/<int:pk>/", views.hit_preview, name="preview"),
    path("hits/<int:pk>/accept/", views.hit_accept, name="accept"),
    path("assignments/<str:assignment_id>/return/", views.assignment_return, name="return"),
    path("mturk/externalSubmit", views.external_submit, name="external-submit"),
]
