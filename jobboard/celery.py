"""The Celery app. Every setting lives in ``jobboard/settings.py`` under the ``CELERY_`` prefix."""

import os

from celery import Celery, signals

from jobboard.startup import log_unconfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobboard.settings")

app = Celery("jobboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_ready.connect
def say_what_is_not_configured_in_the_worker(**kwargs) -> None:
    # The worker sends the emails: the place to say they go nowhere.
    log_unconfigured("worker")
