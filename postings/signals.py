"""Saving or deleting a listing or a company takes down the kept pages that show it (``changes``);
so does ``migrate``, which may change anything."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from . import changes
from .models import Company, Posting


@receiver(post_save, sender=Posting, dispatch_uid="posting_saved_marks")
def posting_saved(
    sender: type[Posting], instance: Posting, update_fields: frozenset[str] | None, **kwargs: Any
) -> None:
    if update_fields is not None and Posting.LAGGING_FIELDS.issuperset(update_fields):
        return
    changes.changed(changes.LISTING, [instance.pk])


@receiver(post_delete, sender=Posting, dispatch_uid="posting_deleted_marks")
def posting_deleted(sender: type[Posting], instance: Posting, **kwargs: Any) -> None:
    changes.changed(changes.LISTING, [instance.pk])


@receiver(post_save, sender=Company, dispatch_uid="company_saved_marks")
@receiver(post_delete, sender=Company, dispatch_uid="company_deleted_marks")
def company_changed(sender: type[Company], instance: Company, **kwargs: Any) -> None:
    changes.changed(changes.COMPANY, [instance.pk])


def migrated(**kwargs: Any) -> None:
    changes.everything_changed()
