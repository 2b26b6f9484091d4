from django.urls import path

from . import views

app_name = "prolific-standin"

urlpatterns = [
    path("api/v1/studies/", views.studies),
    path("api/v1/studies/<str:study_id>/", views.study),
    path("api/v1/studies/<str:study_id>/transition/", views.study_transition),
    path("api/v1/studies/<str:study_id>/submissions/", views.study_submissions),
    path("api/v1/submissions/bonus-payments/", views.bonus_create),
    path("api/v1/submissions/<str:submission_id>/", views.submission),
    path("api/v1/submissions/<str:submission_id>/transition/", views.submission_transition),
    path("api/v1/bulk-bonus-payments/<str:bonus_id>/pay/", views.bonus_pay),
    path("api/v1/messages/", views.messages),
    path("studies/<str:study_id>/take-part/", views.take_part, name="take-part"),
    path("submissions/<str:submission_id>/return/", views.give_back, name="return"),
    path("submissions/complete", views.complete, name="complete"),
]
