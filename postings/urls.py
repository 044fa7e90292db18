from django.urls import path

from . import views

app_name = "postings"

urlpatterns = [
    path("", views.PostingListView.as_view(), name="list"),
    path("<int:pk>-<slug:slug>/", views.PostingDetailView.as_view(), name="detail"),
    path("<int:pk>/", views.posting_short_link, name="short"),
    path("<int:pk>/apply/", views.posting_apply, name="apply"),
]
