from django.urls import path

from . import views

app_name = "reporting"

urlpatterns = [
    path("<int:pk>/report/", views.report_posting, name="report"),
]
