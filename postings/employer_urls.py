"""The employer area, under /employer/: the dashboard, the posting lifecycle and applicants."""


app_name = "employer"

urlpatterns: list = [
    # Filled in by postings/dashboard.py (lifecycle) and postings/application_views.py.
]
