from celery import shared_task

from . import counters


@shared_task
def flush_view_counts() -> int:
    """Add buffered view and apply-click counts to the postings (safe to run concurrently)."""
    added = counters.flush("views") + counters.flush("applies")
    counters.forget_old_flushes()
    return added
