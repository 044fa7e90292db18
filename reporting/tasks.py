from celery import shared_task

from . import digest


@shared_task
def send_moderator_digest() -> int:
    """Email moderators the new reports, at most once an hour (safe to run on two workers)."""
    return digest.digest_send()
