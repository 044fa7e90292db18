from django.urls import path

from . import moderation, status_views

app_name = "moderation"

urlpatterns = [
    path("", moderation.QueueView.as_view(), name="queue"),
    path("bulk/", moderation.BulkActionView.as_view(), name="bulk"),
    path("approvals/", moderation.ApprovalQueueView.as_view(), name="approvals"),
    path("hidden/", moderation.HiddenQueueView.as_view(), name="hidden"),
    path("revisions/", moderation.RevisionQueueView.as_view(), name="revisions"),
    path("revisions/<int:pk>/", moderation.RevisionView.as_view(), name="revision"),
    path("revisions/<int:pk>/act/", moderation.RevisionActionView.as_view(), name="revision_act"),
    path("postings/<int:pk>/", moderation.PostingModerationView.as_view(), name="posting"),
    path("postings/<int:pk>/act/", moderation.PostingActionView.as_view(), name="posting_act"),
    path(
        "postings/<int:pk>/duplicate/",
        moderation.MarkDuplicateView.as_view(),
        name="posting_duplicate",
    ),
    path("reports/<int:pk>/act/", moderation.ReportActionView.as_view(), name="report_act"),
    path("companies/<int:pk>/", moderation.CompanyModerationView.as_view(), name="company"),
    path("companies/<int:pk>/act/", moderation.CompanyActionView.as_view(), name="company_act"),
    path("status/", status_views.StatusView.as_view(), name="status"),
]
