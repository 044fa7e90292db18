from django.urls import path

from . import application_views, feeds, views

app_name = "postings"

urlpatterns = [
    path("", views.PostingListView.as_view(), name="list"),
    # The list's own filters as GET parameters: /jobs/feed/rss/?q=python&workplace=remote
    path("feed/rss/", feeds.OpenJobsRssFeed(), name="feed_rss"),
    path("feed/atom/", feeds.OpenJobsAtomFeed(), name="feed_atom"),
    path("<int:pk>-<slug:slug>/", views.PostingDetailView.as_view(), name="detail"),
    path("<int:pk>/", views.posting_short_link, name="short"),
    # The form when the listing takes applications here, else the counted external redirect.
    path("<int:pk>/apply/", application_views.posting_apply, name="apply"),
    path("<int:pk>/apply/thanks/", application_views.apply_thanks, name="apply_thanks"),
]
