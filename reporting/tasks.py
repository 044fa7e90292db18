from celery import shared_task

from . import digest, safety_net


@shared_task
def send_moderator_digest() -> int:
    """Email moderators the new reports, at most once an hour (safe to run on two workers); and
    any safety-net alert whose own task never ran (the queue was away)."""
    safety_net.alerts_send()
    return digest.digest_send()


@shared_task
def send_safety_net_alerts() -> int:
    """Email moderators what the safety net just did or saw (safe to run twice: each once)."""
    return safety_net.alerts_send()
