"""The employer area, under /employer/: the dashboard, the posting lifecycle and applicants."""

from django.urls import path

from . import application_views, dashboard

app_name = "employer"

urlpatterns: list = [
    path("", dashboard.DashboardView.as_view(), name="dashboard"),
    path("postings/new/", dashboard.PostingCreateView.as_view(), name="posting_create"),
    path("postings/<int:pk>/edit/", dashboard.PostingUpdateView.as_view(), name="posting_edit"),
    path(
        "postings/<int:pk>/preview/", dashboard.PostingPreviewView.as_view(), name="posting_preview"
    ),
    path("postings/<int:pk>/publish/", dashboard.PublishView.as_view(), name="posting_publish"),
    path("postings/<int:pk>/close/", dashboard.CloseView.as_view(), name="posting_close"),
    path("postings/<int:pk>/withdraw/", dashboard.WithdrawView.as_view(), name="posting_withdraw"),
    path(
        "postings/<int:pk>/edit/withdraw/",
        dashboard.WithdrawEditView.as_view(),
        name="posting_withdraw_edit",
    ),
    path("postings/<int:pk>/reopen/", dashboard.ReopenView.as_view(), name="posting_reopen"),
    path(
        "postings/<int:pk>/extend/", dashboard.ExtendDeadlineView.as_view(), name="posting_extend"
    ),
    path(
        "postings/<int:pk>/duplicate/", dashboard.DuplicateView.as_view(), name="posting_duplicate"
    ),
    path(
        "postings/<int:pk>/applicants/",
        application_views.ApplicantListView.as_view(),
        name="applicants",
    ),
    path(
        "postings/<int:pk>/applicants.csv",
        application_views.ApplicantCSVView.as_view(),
        name="applicants_csv",
    ),
    path(
        "applications/<int:pk>/status/",
        application_views.ApplicationStatusView.as_view(),
        name="application_status",
    ),
    path(
        "applications/<int:pk>/cv/",
        application_views.ApplicationCVView.as_view(),
        name="application_cv",
    ),
]
